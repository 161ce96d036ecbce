// The step options of the trainer: decoupled weight decay, label smoothing, mixup and per-example
// weights, each checked against a reference computed another way.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine, tf } from '../../src/engine/index.js';
import { trainStep } from '../../src/train/head_trainer.js';
import { ScheduledAdam } from '../../src/train/optimizer.js';
import { createRng } from '../../src/util/rng.js';

beforeAll(async () => {
  await initEngine();
});

/** A softmax regression with fixed initial weights (the same for every call). */
function tinyHead(): tfl.LayersModel {
  const input = tfl.input({ shape: [4] });
  const dense = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'classifier', kernelInitializer: tfl.initializers.constant({ value: 0.1 }) });
  const model = tfl.model({ inputs: input, outputs: dense.apply(input) as tfl.SymbolicTensor });
  const values = [tf.tensor2d(Array.from({ length: 12 }, (_, i) => (i % 5) / 10 - 0.2), [4, 3]), tf.zeros([3])];
  model.getLayer('classifier').setWeights(values);
  tf.dispose(values);
  return model;
}

const batch = () => [tf.tensor2d([[1, 0, 2, -1], [0.5, 1, -1, 0], [0, -2, 1, 1], [1, 1, 1, 1]])];
const labels = [0, 1, 2, 1];
const kernelOf = (m: tfl.LayersModel) => Array.from(m.getLayer('classifier').getWeights()[0]!.dataSync());
const biasOf = (m: tfl.LayersModel) => Array.from(m.getLayer('classifier').getWeights()[1]!.dataSync());

describe('trainStep options', () => {
  it('weight decay shrinks the kernels by lr·decay after the Adam step, and leaves biases alone', () => {
    const [a, b] = [tinyHead(), tinyHead()];
    const [oa, ob] = [new ScheduledAdam(0.01), new ScheduledAdam(0.01)];
    trainStep(a, oa, batch(), labels, 3);
    trainStep(b, ob, batch(), labels, 3, { weightDecay: 5 });
    const factor = 1 - 0.01 * 5;
    kernelOf(a).forEach((v, i) => expect(kernelOf(b)[i]).toBeCloseTo(v * factor, 6));
    expect(biasOf(b)).toEqual(biasOf(a));
    [a, b].forEach((m) => m.dispose());
    [oa, ob].forEach((o) => o.dispose());
  });

  it('label smoothing and per-example weights change the loss as the formula says', () => {
    const m = tinyHead();
    const probs = (m.predict(batch()[0]!) as tf.Tensor2D).arraySync();
    const ce = (t: number[][], w = [1, 1, 1, 1]) => t.reduce((s, row, i) => s - w[i]! * row.reduce((a, v, k) => a + v * Math.log(probs[i]![k]!), 0), 0) / w.reduce((a, b) => a + b, 0);
    const hot = labels.map((l) => [0, 1, 2].map((k) => (k === l ? 1 : 0)));
    const eps = 0.3;
    const smooth = hot.map((row) => row.map((v) => v * (1 - eps) + eps / 3));
    // The loss a step reports is computed before its update.
    const plain = trainStep(tinyHead(), new ScheduledAdam(0), batch(), labels, 3);
    const smoothed = trainStep(tinyHead(), new ScheduledAdam(0), batch(), labels, 3, { labelSmoothing: eps });
    const weighted = trainStep(tinyHead(), new ScheduledAdam(0), batch(), labels, 3, { sampleWeights: [1, 0, 0, 3] });
    expect(plain.loss).toBeCloseTo(ce(hot), 5);
    expect(smoothed.loss).toBeCloseTo(ce(smooth), 5);
    expect(weighted.loss).toBeCloseTo(ce(hot, [1, 0, 0, 3]), 5);
    m.dispose();
  });

  it('mixup is seeded, changes the step, and leaves no tensor behind', () => {
    const run = (seed: number) => {
      const m = tinyHead();
      const optimizer = new ScheduledAdam(0.01);
      const inputs = batch();
      const result = trainStep(m, optimizer, inputs, labels, 3, { mixup: { alpha: 0.4, rng: createRng(seed) }, sampleWeights: [1, 2, 1, 1] });
      const k = kernelOf(m);
      tf.dispose(inputs);
      optimizer.dispose();
      m.dispose();
      return { loss: result.loss, k };
    };
    run(1); // TF.js fills caches of its own on the first call
    const before = tf.memory().numTensors;
    const [a, b, c] = [run(1), run(1), run(2)];
    expect(tf.memory().numTensors).toBe(before);
    expect(a).toEqual(b);
    expect(a.loss).not.toBeCloseTo(c.loss, 6);
    const plain = trainStep(tinyHead(), new ScheduledAdam(0.01), batch(), labels, 3).loss;
    expect(a.loss).not.toBeCloseTo(plain, 6);
  });
});
