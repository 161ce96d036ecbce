import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { balancedClassWeights, exampleWeights, groupBalancedWeights, weightedCrossEntropy } from '../../src/train/loss.js';
import { sampleBeta } from '../../src/train/head_trainer.js';
import { createRng } from '../../src/util/rng.js';

describe('loss', () => {
  it('cross-entropy matches a hand computation, with and without per-example weights, and with soft targets', async () => {
    await initEngine();
    const probs = tf.tensor2d([
      [0.7, 0.2, 0.1],
      [0.1, 0.6, 0.3],
    ]);
    const oneHot = tf.tensor2d([
      [1, 0, 0],
      [0, 0, 1],
    ]);
    const plain = weightedCrossEntropy(probs, oneHot);
    expect(plain.dataSync()[0]).toBeCloseTo((-Math.log(0.7) - Math.log(0.3)) / 2, 5);
    const weights = tf.tensor1d([1, 3]);
    const weighted = weightedCrossEntropy(probs, oneHot, weights);
    // Weighted mean: (1·-log 0.7 + 3·-log 0.3) / (1 + 3)
    expect(weighted.dataSync()[0]).toBeCloseTo((-Math.log(0.7) - 3 * Math.log(0.3)) / 4, 5);
    const soft = tf.tensor2d([
      [0.5, 0.5, 0],
      [0, 0, 1],
    ]);
    const softLoss = weightedCrossEntropy(probs, soft);
    expect(softLoss.dataSync()[0]).toBeCloseTo((-0.5 * Math.log(0.7) - 0.5 * Math.log(0.2) - Math.log(0.3)) / 2, 5);
    tf.dispose([probs, oneHot, plain, weights, weighted, soft, softLoss]);
  });

  it('balanced class weights are n / (classes present · count), zero for absent classes', () => {
    // 4 of class 0, 2 of class 1, none of class 2: 6 / (2·4) = 0.75, 6 / (2·2) = 1.5.
    expect(balancedClassWeights([0, 0, 0, 0, 1, 1], 3)).toEqual([0.75, 1.5, 0]);
    expect(exampleWeights('balanced', [0, 0, 0, 0, 1, 1], [], 3)).toEqual([0.75, 0.75, 0.75, 0.75, 1.5, 1.5]);
    expect(exampleWeights('none', [0, 1], [], 2)).toBeUndefined();
  });

  it('group-balanced weights: every source weighs the same within its class, every class the same in all', () => {
    // Class 0: source a has 3 frames, b has 1; class 1: source c has 2 frames.
    const labels = [0, 0, 0, 0, 1, 1];
    const groups = ['a', 'a', 'a', 'b', 'c', 'c'];
    const w = groupBalancedWeights(labels, groups);
    const total = (pick: (i: number) => boolean) => w.reduce((s, v, i) => s + (pick(i) ? v : 0), 0);
    expect(total((i) => groups[i] === 'a')).toBeCloseTo(total((i) => groups[i] === 'b'), 10);
    expect(total((i) => labels[i] === 0)).toBeCloseTo(total((i) => labels[i] === 1), 10);
    expect(w.reduce((a, b) => a + b, 0) / w.length).toBeCloseTo(1, 10);
    // By hand: a's frames 1/6 each, b's 1/2, c's 1/4, scaled to mean 1 (sum 2, so ×3): 0.5, 1.5, 0.75.
    expect(w.map((v) => Number(v.toFixed(6)))).toEqual([0.5, 0.5, 0.5, 1.5, 1.5, 1.5]);
    const rows = groups.map((g, i) => ({ source: g, patient: i < 4 ? 'p1' : 'p2' }));
    expect(exampleWeights('source', labels, rows, 2)).toEqual(w);
    // By patient: one patient per class, so every frame of a class weighs the same.
    expect(exampleWeights('patient', labels, rows, 2)!.map((v) => Number(v.toFixed(6)))).toEqual([0.75, 0.75, 0.75, 0.75, 1.5, 1.5]);
  });

  it('samples Beta(α, α) with the right mean and variance', () => {
    for (const alpha of [0.4, 2]) {
      const rng = createRng(3);
      const draws = Array.from({ length: 20000 }, () => sampleBeta(rng, alpha));
      const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
      const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / draws.length;
      expect(draws.every((d) => d >= 0 && d <= 1)).toBe(true);
      expect(mean).toBeCloseTo(0.5, 1);
      // Var Beta(α, α) = 1 / (4 (2α + 1)).
      expect(variance).toBeCloseTo(1 / (4 * (2 * alpha + 1)), 2);
    }
  });
});
