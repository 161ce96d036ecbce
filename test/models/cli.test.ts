// `pocovid models --json`: one object per registered model with counts at 3 classes.
import { describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { modelNames } from '../../src/models/index.js';

describe('pocovid models', () => {
  it('prints every model with its input shape, parameter counts and weight sources as JSON', async () => {
    const printed: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((text: string) => void printed.push(text));
    try {
      await buildProgram().parseAsync(['node', 'pocovid', 'models', '--json']);
    } finally {
      log.mockRestore();
    }
    const rows = JSON.parse(printed.join('\n')) as Record<string, unknown>[];
    expect(rows.map((row) => row['name'])).toEqual(modelNames());
    const vgg16 = rows.find((row) => row['name'] === 'vgg16')!;
    expect(vgg16).toMatchObject({ inputShape: [224, 224, 3], trainableParams: 2_392_963, nonTrainableParams: 12_355_008 });
    expect((vgg16['pretrained'] as { format: string }[]).map((source) => source.format)).toEqual(['keras-h5', 'torchvision-safetensors']);
    const grey = rows.find((row) => row['name'] === 'grayscale_cnn')!;
    expect(grey).toMatchObject({ inputShape: [224, 224, 1], pretrained: [] });
    for (const row of rows) expect(typeof row['description']).toBe('string');
  });
});
