// Our FusedBatchNorm gradient against autodiff of the same formula written with elementary ops
// (sub, mul, rsqrt, add: gradients that do not involve FusedBatchNorm at all).
import { describe, expect, it } from 'vitest';
import { initEngine, tf } from '../../src/engine/index.js';

function maxRelativeError(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / Math.max(1e-3, Math.abs(y[i]!)));
  return worst;
}

describe('FusedBatchNorm gradient', () => {
  it('matches autodiff of the elementary formula for x, mean, variance, scale and offset', async () => {
    await initEngine();
    const x = tf.randomNormal([3, 5, 4, 6], 0, 1, 'float32', 1);
    const mean = tf.randomNormal([6], 0, 1, 'float32', 2);
    const variance = tf.add(tf.randomUniform([6], 0.2, 2, 'float32', 3), 0);
    const scale = tf.randomNormal([6], 1, 0.3, 'float32', 4);
    const offset = tf.randomNormal([6], 0, 1, 'float32', 5);
    const upstream = tf.randomNormal([3, 5, 4, 6], 0, 1, 'float32', 6);
    const eps = 1e-3;
    const fused = (a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
      tf.sum(tf.mul(tf.batchNorm(a, m, v, o, s, eps), upstream));
    const elementary = (a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
      tf.sum(tf.mul(tf.add(tf.mul(tf.mul(tf.sub(a, m), tf.rsqrt(tf.add(v, eps))), s), o), upstream));
    const ours = tf.grads(fused)([x, mean, variance, scale, offset]);
    const reference = tf.grads(elementary)([x, mean, variance, scale, offset]);
    ['x', 'mean', 'variance', 'scale', 'offset'].forEach((name, i) => {
      expect(ours[i]!.shape, name).toEqual(reference[i]!.shape);
      expect(maxRelativeError(ours[i]!, reference[i]!), name).toBeLessThan(1e-4);
    });
    tf.dispose([x, mean, variance, scale, offset, upstream, ...ours, ...reference]);
  });
});
