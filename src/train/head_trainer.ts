// The epoch loop over the trainable part of a network. It knows nothing about files: the caller
// hands it a source of head inputs (cached features or freshly computed ones) and labels.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Rng } from '../util/rng.js';
import { weightedCrossEntropy } from './loss.js';
import type { ScheduledAdam } from './optimizer.js';

/** Supplies the trainable part's inputs for a batch of examples (the caller's tensors are disposed here). */
export interface HeadInputSource {
  count: number;
  labels: number[];
  inputs(indices: number[], rng: Rng): Promise<tf.Tensor[]>;
}

export interface StepResult {
  loss: number;
  correct: number;
}

function oneHot(labels: number[], numClasses: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses), 'float32') as tf.Tensor2D);
}

/** One optimiser step on a batch; only `head`'s trainable weights move. */
export function trainStep(
  head: tfl.LayersModel,
  optimizer: ScheduledAdam,
  inputs: tf.Tensor[],
  labels: number[],
  numClasses: number,
  classWeights?: tf.Tensor1D,
): StepResult {
  const target = oneHot(labels, numClasses);
  const variables = head.trainableWeights.map((w) => w.read() as tf.Variable);
  let correct = 0;
  const lossTensor = optimizer.minimize(
    () => {
      const out = head.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: true }) as tf.Tensor2D;
      const predicted = tf.argMax(out, 1).dataSync();
      correct = labels.reduce((n, label, i) => n + (predicted[i] === label ? 1 : 0), 0);
      return weightedCrossEntropy(out, target, classWeights);
    },
    true,
    variables,
  );
  const loss = lossTensor ? lossTensor.dataSync()[0]! : Number.NaN;
  if (lossTensor) lossTensor.dispose();
  target.dispose();
  return { loss, correct };
}

/** Class probabilities of the head for every example of `source` (inference mode). */
export async function predictHead(head: tfl.LayersModel, source: HeadInputSource, rng: Rng, batchSize: number): Promise<Float32Array[]> {
  const rows: Float32Array[] = [];
  for (let start = 0; start < source.count; start += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, source.count - start) }, (_, i) => start + i);
    const inputs = await source.inputs(indices, rng);
    const out = head.predict(inputs.length === 1 ? inputs[0]! : inputs) as tf.Tensor2D;
    const [n, k] = out.shape;
    const values = (await out.data()) as Float32Array;
    for (let i = 0; i < n; i++) rows.push(values.slice(i * k, (i + 1) * k));
    tf.dispose([...inputs, out]);
  }
  return rows;
}

/** Mean cross-entropy of probabilities against labels (validation loss, unweighted). */
export function meanCrossEntropy(probabilities: Float32Array[], labels: number[]): number {
  if (labels.length === 0) return Number.NaN;
  let sum = 0;
  probabilities.forEach((p, i) => {
    sum -= Math.log(Math.min(Math.max(p[labels[i]!]!, 1e-7), 1));
  });
  return sum / labels.length;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Accuracy and balanced accuracy (mean recall over classes present) for model selection. */
export function selectionMetrics(probabilities: Float32Array[], labels: number[], numClasses: number): { accuracy: number; balancedAccuracy: number } {
  const hits = new Array<number>(numClasses).fill(0);
  const support = new Array<number>(numClasses).fill(0);
  labels.forEach((label, i) => {
    support[label]! += 1;
    if (argmax(probabilities[i]!) === label) hits[label]! += 1;
  });
  const present = support.map((s, c) => (s > 0 ? hits[c]! / s : -1)).filter((r) => r >= 0);
  const accuracy = labels.length ? hits.reduce((a, b) => a + b, 0) / labels.length : Number.NaN;
  const balancedAccuracy = present.length ? present.reduce((a, b) => a + b, 0) / present.length : Number.NaN;
  return { accuracy, balancedAccuracy };
}
