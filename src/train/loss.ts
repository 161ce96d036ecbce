// Cross-entropy with optional per-class weights (for imbalanced folds).
import * as tf from '@tensorflow/tfjs-core';

/** Mean over the batch of -w[y] * log p[y]; `probs` are softmax outputs, `oneHot` the labels. */
export function weightedCrossEntropy(probs: tf.Tensor2D, oneHot: tf.Tensor2D, classWeights?: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const clipped = tf.clipByValue(probs, 1e-7, 1 - 1e-7);
    const perSample = tf.neg(tf.sum(tf.mul(oneHot, tf.log(clipped)), 1));
    if (!classWeights) return tf.mean(perSample) as tf.Scalar;
    const sampleWeights = tf.sum(tf.mul(oneHot, classWeights), 1);
    return tf.div(tf.sum(tf.mul(perSample, sampleWeights)), tf.sum(sampleWeights)) as tf.Scalar;
  });
}

/** 'balanced' weights as scikit-learn: n_samples / (n_classes * count_c); classes without samples get 0. */
export function balancedClassWeights(labels: number[], numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const label of labels) counts[label]! += 1;
  const present = counts.filter((c) => c > 0).length;
  return counts.map((c) => (c > 0 ? labels.length / (present * c) : 0));
}
