import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { balancedClassWeights, weightedCrossEntropy } from '../../src/train/loss.js';

describe('loss', () => {
  it('cross-entropy matches a hand computation, with and without class weights', async () => {
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
    const weights = tf.tensor1d([1, 1, 3]);
    const weighted = weightedCrossEntropy(probs, oneHot, weights);
    // Weighted mean: (1·-log 0.7 + 3·-log 0.3) / (1 + 3)
    expect(weighted.dataSync()[0]).toBeCloseTo((-Math.log(0.7) - 3 * Math.log(0.3)) / 4, 5);
    tf.dispose([probs, oneHot, plain, weights, weighted]);
  });

  it('balanced class weights are n / (classes present · count), zero for absent classes', () => {
    // 4 of class 0, 2 of class 1, none of class 2: 6 / (2·4) = 0.75, 6 / (2·2) = 1.5.
    expect(balancedClassWeights([0, 0, 0, 0, 1, 1], 3)).toEqual([0.75, 1.5, 0]);
  });
});
