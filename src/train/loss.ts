// Cross-entropy against (possibly soft) targets with per-sample weights, and the weights
// themselves: per class, per source or per patient (see CLASS_WEIGHTING in config.ts).
import * as tf from '@tensorflow/tfjs-core';

/**
 * Σ w_i · (−Σ_k t_ik log p_ik) / Σ w_i over the batch; `probs` are softmax outputs, `targets` rows
 * that sum to 1 (one-hot, smoothed or mixed), `sampleWeights` one per row (absent: all 1).
 */
export function weightedCrossEntropy(probs: tf.Tensor2D, targets: tf.Tensor2D, sampleWeights?: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const clipped = tf.clipByValue(probs, 1e-7, 1 - 1e-7);
    const perSample = tf.neg(tf.sum(tf.mul(targets, tf.log(clipped)), 1));
    if (!sampleWeights) return tf.mean(perSample) as tf.Scalar;
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

/**
 * One weight per example: every group (a source or a patient) gets the same total weight within
 * its class, and every class present the same total weight; scaled to a mean of 1.
 */
export function groupBalancedWeights(labels: readonly number[], groups: readonly string[]): number[] {
  const groupSize = new Map<string, number>();
  groups.forEach((g, i) => groupSize.set(`${labels[i]}|${g}`, (groupSize.get(`${labels[i]}|${g}`) ?? 0) + 1));
  const raw = groups.map((g, i) => 1 / groupSize.get(`${labels[i]}|${g}`)!);
  const classTotal = new Map<number, number>();
  raw.forEach((w, i) => classTotal.set(labels[i]!, (classTotal.get(labels[i]!) ?? 0) + w));
  const perClass = raw.map((w, i) => w / classTotal.get(labels[i]!)!);
  const mean = perClass.reduce((a, b) => a + b, 0) / Math.max(perClass.length, 1);
  return perClass.map((w) => w / mean);
}

/** The loss weight of each training example for a run's `classWeights` setting (undefined: all equal). */
export function exampleWeights(
  kind: 'none' | 'balanced' | 'source' | 'patient',
  labels: readonly number[],
  rows: readonly { source: string; patient: string }[],
  numClasses: number,
): number[] | undefined {
  if (kind === 'none') return undefined;
  if (kind === 'balanced') {
    const perClass = balancedClassWeights([...labels], numClasses);
    return labels.map((l) => perClass[l]!);
  }
  return groupBalancedWeights(labels, rows.map((r) => (kind === 'source' ? r.source : r.patient)));
}
