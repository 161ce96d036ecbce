// --runtime for `pocovid explain`: occlusion maps and t-SNE features on ONNX Runtime equal TF.js's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { extractFeatures, extractFeaturesAndPredictions } from '../../src/explain/embedding.js';
import { layersForward, occlusionMap, runnerForward } from '../../src/explain/occlusion.js';
import { createForwardRunner } from '../../src/onnx/runtime.js';
import { createRng } from '../../src/util/rng.js';
import { tinyModel } from '../helpers/tiny_model.js';

const SIZE = 24;
const shape: [number, number, number] = [SIZE, SIZE, 3];
let work: string;

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-rt-explain-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function inputs(n: number, seed: number): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: SIZE * SIZE * 3 }, () => rng.normal()));
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
};

describe('occlusion on ONNX Runtime', () => {
  it('gives the same drop map as model.predict (within 1e-4)', async () => {
    const model = tinyModel(3, { size: SIZE });
    const [x] = inputs(1, 1);
    const runner = await createForwardRunner(model, { runtime: 'ort', cacheDir: join(work, 'onnx') });
    expect(runner.runtime).toBe('ort');
    const options = { patch: 6, stride: 3, batchSize: 8 };
    const ort = await occlusionMap(runnerForward(runner), x!, shape, options);
    const before = tf.memory().numTensors;
    const tfjs = await occlusionMap(layersForward(model, shape), x!, shape, options);
    expect(tf.memory().numTensors).toBe(before);
    expect(ort.classIndex).toBe(tfjs.classIndex);
    expect(ort.positions).toBe(tfjs.positions);
    expect(Math.abs(ort.baseline - tfjs.baseline)).toBeLessThan(1e-4);
    expect(maxAbs(ort.drop, tfjs.drop)).toBeLessThan(1e-4);
    await runner.dispose();
    model.dispose();
  });
});

describe('t-SNE features on ONNX Runtime', () => {
  it('features and predictions equal TF.js (and the TF.js feature extractor) within 1e-4, in uneven batches', async () => {
    const model = tinyModel(7, { size: SIZE });
    const xs = inputs(5, 2);
    const ort = await extractFeaturesAndPredictions(model, 'gap', xs, { runtime: 'ort', cacheDir: join(work, 'onnx'), batchSize: 2 });
    const tfjs = await extractFeaturesAndPredictions(model, 'gap', xs, { runtime: 'tfjs', batchSize: 2 });
    const reference = extractFeatures(model, 'gap', xs, shape);
    const probs = tf.tidy(() => (model.predict(tf.tensor4d(Float32Array.from(xs.flatMap((x) => [...x])), [5, ...shape])) as tf.Tensor).arraySync() as number[][]);
    expect(ort.features.length).toBe(5);
    expect(ort.features[0]!.length).toBe(8);
    for (let i = 0; i < 5; i++) {
      expect(maxAbs(ort.features[i]!, reference[i]!)).toBeLessThan(1e-4);
      expect(maxAbs(tfjs.features[i]!, reference[i]!)).toBeLessThan(1e-6);
      expect(maxAbs(ort.probabilities[i]!, probs[i]!)).toBeLessThan(1e-4);
    }
    model.dispose();
  });

  it('names the layer it cannot find', async () => {
    const model = tinyModel(2, { size: SIZE });
    await expect(extractFeaturesAndPredictions(model, 'nope', inputs(1, 0), { runtime: 'tfjs' })).rejects.toThrow(/layer "nope" is not in model/);
    model.dispose();
  });
});
