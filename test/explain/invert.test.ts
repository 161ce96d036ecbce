// Feature inversion: the layer names resolve on every head, the picture's features come closer to
// the frame's than grey noise's were, updates stay grey, a seed gives the same picture, nothing is
// left on the engine; and `explain invert` writes a panel per frame for every model of a run.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { initEngine } from '../../src/engine/index.js';
import { invertFeatures, resolveInversionLayer, stretchForDisplay } from '../../src/explain/invert.js';
import { renderInversions } from '../../src/explain/invert_run.js';
import { PHANTOM_CLASSES, renderPhantomFrame, samplePhantomScene } from '../../src/data/phantom.js';
import { saveModelDir } from '../../src/infer/model_dir.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';
import { createRng } from '../../src/util/rng.js';
import { writeFileAtomicSync } from '../../src/util/atomic.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

const SIDE = 32;
let root: string;

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-invert-'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function phantomFrame(seed: number): Uint8Array {
  const rng = createRng(seed);
  return renderPhantomFrame(samplePhantomScene(PHANTOM_CLASSES[seed % 3]!, SIDE, rng), 0, rng);
}

describe('resolveInversionLayer', () => {
  it('finds the end of the base and the penultimate layer on both heads, and names the layers it lacks', () => {
    const pocovid = createModel('mobilenet_v1', { numClasses: 3, inputSize: [SIDE, SIDE], seed: 1 });
    expect(resolveInversionLayer(pocovid.model, pocovid.cfg, 'base')).toBe('conv_pw_12_relu');
    expect(resolveInversionLayer(pocovid.model, pocovid.cfg, 'penultimate')).toBe('head_relu');
    expect(resolveInversionLayer(pocovid.model, pocovid.cfg, 'conv_pw_5_relu')).toBe('conv_pw_5_relu');
    expect(() => resolveInversionLayer(pocovid.model, pocovid.cfg, 'block9')).toThrow(/layer "block9" is not in model/);
    disposeBuiltModel(pocovid);
    const linear = createModel('resnet18', { numClasses: 3, inputSize: [SIDE, SIDE], seed: 1, head: 'linear' });
    expect(resolveInversionLayer(linear.model, linear.cfg, 'base')).toBe('layer4_1_relu');
    expect(resolveInversionLayer(linear.model, linear.cfg, 'penultimate')).toBe('cam_gap');
    disposeBuiltModel(linear);
  });
});

describe('invertFeatures', () => {
  it('brings the picture\'s features closer to the frame\'s than the start\'s, with grey updates, seeded, leaving no tensors', () => {
    const built = createModel('mobilenet_v1', { numClasses: 3, inputSize: [SIDE, SIDE], seed: 2 });
    const target = phantomFrame(4);
    const run = (seed: number) => invertFeatures(built.model, built.cfg, 'conv_pw_5_relu', target, { steps: 30, rng: createRng(seed) });
    run(0); // TF.js fills caches of its own on the first pass
    const tensorsBefore = tf.memory().numTensors;
    const result = run(0);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(result.distances).toHaveLength(31);
    expect(result.distances.at(-1)!).toBeLessThan(0.6 * result.distances[0]!);
    for (let i = 0; i < SIDE * SIDE; i++) {
      expect(result.rgb[i * 3]).toBe(result.rgb[i * 3 + 1]);
      expect(result.rgb[i * 3]).toBe(result.rgb[i * 3 + 2]);
    }
    expect(Buffer.from(run(0).rgb).equals(Buffer.from(result.rgb))).toBe(true);
    expect(Buffer.from(run(1).rgb).equals(Buffer.from(result.rgb))).toBe(false);
    // The inversion is of this frame: another frame's features stay far from the picture's.
    const other = invertFeatures(built.model, built.cfg, 'conv_pw_5_relu', phantomFrame(5), { steps: 0, rng: createRng(0) });
    expect(other.distances[0]!).toBeGreaterThan(result.distances.at(-1)!);
    disposeBuiltModel(built);
  });

  it('refuses a frame of the wrong size', () => {
    const built = createModel('mobilenet_v1', { numClasses: 3, inputSize: [SIDE, SIDE], seed: 2 });
    expect(() => invertFeatures(built.model, built.cfg, 'head_relu', new Uint8Array(10), { steps: 1, rng: createRng(0) })).toThrow(/10 values, the model takes 32×32×3/);
    disposeBuiltModel(built);
  });
});

describe('stretchForDisplay', () => {
  it('maps the 1st–99th percentile to the full range, the same for every channel', () => {
    const rgb = new Uint8ClampedArray(300);
    for (let i = 0; i < 100; i++) rgb.fill(100 + (i % 21), i * 3, i * 3 + 3); // grey levels 100..120
    const { rgb: out, low, high } = stretchForDisplay(rgb);
    expect([low, high]).toEqual([100, 120]);
    expect(out[0]).toBe(0);
    expect(out[20 * 3]).toBe(255);
    expect(out[10 * 3]).toBe(128);
    for (let i = 0; i < 100; i++) expect(out[i * 3]).toBe(out[i * 3 + 2]);
  });
});

describe('pocovid explain invert', () => {
  let run: string;

  beforeAll(async () => {
    const data = join(root, 'data');
    await writeTinyDataset(data, { patientsPerClass: 2, framesPerVideo: 3, folds: 2, size: SIDE });
    run = join(root, 'run');
    writeFileAtomicSync(join(run, 'config.json'), JSON.stringify({ data, model: 'mobilenet_v1' }));
    for (const fold of [0, 1]) {
      const built = createModel('mobilenet_v1', { numClasses: 3, inputSize: [SIDE, SIDE], seed: 10 + fold });
      await saveModelDir(join(run, `fold-${fold}`, 'model'), { name: built.name, classes: [...PHANTOM_CLASSES], cfg: built.cfg, members: [built.model] });
      disposeBuiltModel(built);
    }
  });

  it('writes one panel per frame with every fold model at every layer, and inversions.json', async () => {
    const out = join(root, 'inversions');
    const result = await renderInversions({ run, out, steps: 8, limit: 2, seed: 3 });
    expect(result.panels).toEqual(['frame-000.png', 'frame-001.png']);
    expect(result.inversions).toHaveLength(2 * 2 * 2);
    for (const inv of result.inversions) {
      expect(existsSync(join(out, inv.file)), inv.file).toBe(true);
      expect(inv.endDistance).toBeLessThan(inv.startDistance);
    }
    expect(new Set(result.inversions.map((i) => `${i.model}/${i.layer}`))).toEqual(
      new Set(['fold-0/conv_pw_12_relu', 'fold-0/head_relu', 'fold-1/conv_pw_12_relu', 'fold-1/head_relu']),
    );
    const json = JSON.parse(readFileSync(join(out, 'inversions.json'), 'utf8'));
    expect(json).toMatchObject({ steps: 8, seed: 3, tv: 20, blurEvery: 4, layers: ['base', 'penultimate'] });
    expect(json.models[0].layers).toEqual([{ spec: 'base', layer: 'conv_pw_12_relu' }, { spec: 'penultimate', layer: 'head_relu' }]);
    const html = readFileSync(result.index, 'utf8');
    for (const panel of result.panels) expect(html).toContain(`src="${panel}"`);
    // The same seed gives the same pictures.
    const again = await renderInversions({ run, out: join(root, 'again'), steps: 8, limit: 1, seed: 3 });
    const file = result.inversions[3]!.file;
    expect(readFileSync(join(root, 'again', file)).equals(readFileSync(join(out, file)))).toBe(true);
    expect(again.inversions.map((i) => i.endDistance)).toEqual(result.inversions.slice(0, 4).map((i) => i.endDistance));
  });

  it('takes files, folds and layers from the command line', async () => {
    const out = join(root, 'cli');
    const image = join(root, 'data', 'frames', 'covid_0_1.png');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      await main(['node', 'pocovid', 'explain', 'invert', image, '--run', run, '--fold', '1', '--layer', 'conv_pw_3_relu', '--steps', '4', '--out', out]);
      expect(process.exitCode ?? 0).toBe(0);
      expect(log.mock.calls.flat().join('\n')).toMatch(/inverted 1 frame\(s\), 1 inversion\(s\)/);
      await main(['node', 'pocovid', 'explain', 'invert', '--run', run, '--fold', '7', '--out', out]);
      expect(err.mock.calls.flat().join('\n')).toMatch(/has no fold 7; folds present: 0, 1/);
      process.exitCode = 0;
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
    expect(existsSync(join(out, 'frame-000', 'fold-1-conv_pw_3_relu.png'))).toBe(true);
  });
});
