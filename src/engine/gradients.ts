// Gradients we replace (backend-independent, unlike kernels/).
//
// FusedBatchNorm: tfjs-core's gradient tiles 1/sqrt(var) to the full activation shape and repeats
// the same products per input; on wasm the Tile alone took ~4.6 s of a 17 s training step of the
// grey CNN at 224². This version broadcasts instead of tiling and shares the two reductions
// (sum dy, sum dy·(x−mean)) among the five partial derivatives.
import * as tf from '@tensorflow/tfjs-core';

function reductionAxes(rank: number): number[] {
  return Array.from({ length: rank - 1 }, (_, i) => i);
}

export const fusedBatchNormGradient: tf.GradConfig = {
  kernelName: tf.FusedBatchNorm,
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const grad = dy as tf.Tensor;
    const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
    const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
    // Per-channel parameters (rank 1) reduce over every axis but the last; full-shape ones don't reduce.
    const perChannel = mean.rank === 1;
    const reduce = (t: tf.Tensor): tf.Tensor => (perChannel ? tf.sum(t, reductionAxes(x.rank)) : t);
    const scaleValue = scale ?? tf.scalar(1);
    const inverseStd = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
    // Computed here, not inside the closures: the engine runs each closure in its own scope, so a
    // tensor memoised in one would be disposed before the next used it.
    const sumDy = reduce(grad);
    const sumDyCentred = reduce(tf.mul(grad, tf.sub(x, mean)));
    const dySum = () => sumDy;
    const dyCentredSum = () => sumDyCentred;
    return {
      x: () => tf.mul(grad, tf.mul(inverseStd, scaleValue)),
      mean: () => tf.reshape(tf.neg(tf.mul(tf.mul(inverseStd, scaleValue), dySum())), mean.shape),
      variance: () =>
        tf.reshape(tf.mul(tf.mul(tf.mul(tf.pow(inverseStd, tf.scalar(3)), tf.scalar(-0.5)), scaleValue), dyCentredSum()), mean.shape),
      scale: () => tf.reshape(tf.mul(inverseStd, dyCentredSum()), mean.shape),
      offset: () => tf.reshape(dySum(), mean.shape),
    };
  },
};

export function registerGradients(): void {
  tf.registerGradient(fusedBatchNormGradient);
}
