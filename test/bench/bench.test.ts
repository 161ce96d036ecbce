// `pocovid bench --json` end to end through the CLI (it measures each model in a child process):
// the JSON shape per model and runtime. No timing assertions: the machine is shared.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { benchCrossValidation } from '../../src/bench/cv.js';
import type { BenchReport } from '../../src/bench/run.js';

const run = promisify(execFile);

function cli(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: process.cwd(), maxBuffer: 1 << 24, timeout: 240_000 });
}

const positive = (value: unknown): void => {
  expect(typeof value).toBe('number');
  expect(Number.isFinite(value)).toBe(true);
  expect(value as number).toBeGreaterThan(0);
};

describe('pocovid bench --json', () => {
  it('reports grayscale_cnn on tfjs and ort at a tiny input size', async () => {
    const { stdout } = await cli(['bench', '--json', '--models', 'grayscale_cnn', '--runtimes', 'tfjs,ort', '--input-size', '24', '--repeats', '1']);
    const report = JSON.parse(stdout) as BenchReport;
    positive(report.threads);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.cv).toBeUndefined();
    expect(report.results.map((r) => [r.model, r.runtime])).toEqual([
      ['grayscale_cnn', 'tfjs-wasm'],
      ['grayscale_cnn', 'ort'],
    ]);
    for (const r of report.results) {
      expect(r.inputShape).toEqual([24, 24, 1]);
      expect(r.inferenceBatch).toBe(8);
      expect(r.trainBatch).toBe(16);
      for (const key of ['threads', 'inferenceImgPerSec', 'inferenceBatch1ImgPerSec', 'trainImgPerSec', 'trainCachedImgPerSec', 'peakRssMb'] as const) positive(r[key]);
      // grayscale_cnn trains from scratch: nothing frozen, no feature cache; its "features" are the image.
      expect(r.featureCacheImgPerSec).toBeNull();
      expect(r.cachedFeatureShapes).toEqual([[24, 24, 1]]);
    }
    // The int8 graph runs on ONNX Runtime only.
    const [tfjs, ort] = report.results;
    expect(tfjs!.int8InferenceImgPerSec).toBeNull();
    expect(tfjs!.int8InferenceBatch1ImgPerSec).toBeNull();
    positive(ort!.int8InferenceImgPerSec);
    positive(ort!.int8InferenceBatch1ImgPerSec);
  });

  it('names runtimes in cv entries as in results (tfjs-wasm, ort)', async () => {
    const cv = await benchCrossValidation({ specs: [{ model: 'grayscale_cnn', inputSize: [16, 16] }], runtimes: ['tfjs', 'ort'], epochs: 1 });
    expect(cv.map((c) => [c.model, c.runtime, c.folds])).toEqual([
      ['grayscale_cnn', 'tfjs-wasm', 3],
      ['grayscale_cnn', 'ort', 3],
    ]);
    for (const c of cv) positive(c.seconds);
  });

  it('refuses an unknown runtime, naming the valid ones', async () => {
    // One line in the CLI's one error style, exit code 2; 'auto' is not a runtime one can measure.
    await expect(cli(['bench', '--json', '--runtimes', 'gpu'])).rejects.toMatchObject({
      code: 2,
      stderr: `pocovid: option '--runtimes <list>' argument 'gpu' is invalid. "gpu": Expected one of ort, tfjs.\n`,
    });
  });
});
