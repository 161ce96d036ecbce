import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { mcDropout } from '../../src/explain/uncertainty.js';
import { classifyInputs, classifyInputsWith, type MemberForward } from '../../src/decision/classify.js';
import { createRng } from '../../src/util/rng.js';
import { tinyModel } from '../helpers/tiny_model.js';

const SHAPE: [number, number, number] = [16, 16, 3];

function inputsOf(n: number, seed: number): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: 16 * 16 * 3 }, () => rng.normal()));
}

beforeAll(async () => {
  await initEngine();
});

describe('classifyInputs', () => {
  it('the TF.js path and the plugged-forward path agree, MC spread included, and leak no tensor', async () => {
    const members = [tinyModel(1, { size: 16 }), tinyModel(5, { size: 16 })];
    const forwards: MemberForward[] = members.map((model) => async (flat, n) => {
      const x = tf.tensor4d(flat, [n, ...SHAPE]);
      const y = model.predict(x) as tf.Tensor;
      const values = (await y.data()) as Float32Array;
      tf.dispose([x, y]);
      return values;
    });
    const inputs = inputsOf(5, 11);
    const options = { mcDropout: 4, seed: 9, batchSize: 2 };
    const before = tf.memory().numTensors;
    const sync = classifyInputs(members, inputs, SHAPE, options);
    const viaForwards = await classifyInputsWith(members, forwards, inputs, SHAPE, options);
    expect(tf.memory().numTensors).toBe(before);
    expect(sync.length).toBe(5);
    sync.forEach((s, i) => {
      const other = viaForwards[i]!;
      s.probabilities.forEach((p, k) => expect(p).toBeCloseTo(other.probabilities[k]!, 6));
      expect(s.ensembleStd!).toBeCloseTo(other.ensembleStd!, 6);
      expect(s.mcDropoutStd).toBe(other.mcDropoutStd);
      expect(s.mcDropoutStd!).toBeGreaterThan(0);
    });
  });

  it('the MC spread is the explain mcDropout std averaged over classes, seeded per member and batch', () => {
    const model = tinyModel(3, { size: 16 });
    const inputs = inputsOf(3, 4);
    const scores = classifyInputs([model], inputs, SHAPE, { mcDropout: 5, seed: 2, batchSize: 8 });
    const x = tf.tensor4d(Float32Array.from(inputs.flatMap((a) => Array.from(a))), [3, ...SHAPE]);
    const reference = mcDropout(model, x, 5, createRng(2 * 7919));
    x.dispose();
    scores.forEach((s, i) => {
      const std = reference.std[i]!;
      expect(s.mcDropoutStd).toBeCloseTo(std.reduce((a, b) => a + b, 0) / std.length, 12);
    });
    const noMc = classifyInputs([model], inputs, SHAPE);
    expect(noMc.every((s) => s.mcDropoutStd === null && s.ensembleStd === null)).toBe(true);
  });
});
