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

/** How a step turns labels into targets and mixes examples (see TrainConfig). */
export interface StepOptions {
  /** One weight per example of the batch (absent: all equal). */
  sampleWeights?: number[];
  /** ε: targets (1 − ε)·onehot + ε/K. */
  labelSmoothing?: number;
  /** Mixup with λ ~ Beta(α, α) and a partner permutation drawn from `rng`; 0/absent = off. */
  mixup?: { alpha: number; rng: Rng };
  /** Decoupled weight decay on the trainable kernels (AdamW): w ← w − lr·decay·w after the step. */
  weightDecay?: number;
}

/** Soft targets of a batch: one-hot, smoothed by ε. */
function targets(labels: number[], numClasses: number, smoothing: number): tf.Tensor2D {
  return tf.tidy(() => {
    const hot = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses), 'float32') as tf.Tensor2D;
    return smoothing > 0 ? (tf.add(tf.mul(hot, 1 - smoothing), smoothing / numClasses) as tf.Tensor2D) : hot;
  });
}

/** Beta(α, α) from two gamma draws (Marsaglia–Tsang, with the α < 1 boost). */
export function sampleBeta(rng: Rng, alpha: number): number {
  const gamma = (a: number): number => {
    if (a < 1) return gamma(a + 1) * Math.pow(Math.max(rng.next(), 1e-12), 1 / a);
    const d = a - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = rng.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = rng.next();
      if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  };
  const x = gamma(alpha);
  const y = gamma(alpha);
  return x / (x + y);
}

/** Kernels (not biases, not BatchNorm) of the trainable part: what weight decay shrinks. */
function decayedVariables(head: tfl.LayersModel): tf.Variable[] {
  return head.trainableWeights.filter((w) => /kernel$/.test(w.originalName)).map((w) => w.read() as tf.Variable);
}

/** One optimiser step on a batch; only `head`'s trainable weights move. */
export function trainStep(
  head: tfl.LayersModel,
  optimizer: ScheduledAdam,
  inputs: tf.Tensor[],
  labels: number[],
  numClasses: number,
  options: StepOptions = {},
): StepResult {
  const variables = head.trainableWeights.map((w) => w.read() as tf.Variable);
  let target = targets(labels, numClasses, options.labelSmoothing ?? 0);
  let weights = options.sampleWeights ? tf.tensor1d(options.sampleWeights) : undefined;
  let batch = inputs;
  const owned: tf.Tensor[] = [];
  if (options.mixup && options.mixup.alpha > 0 && labels.length > 1) {
    // Each example is mixed with a partner from the same batch: inputs, targets and weights alike.
    const lambda = sampleBeta(options.mixup.rng, options.mixup.alpha);
    const partner = tf.tensor1d(options.mixup.rng.shuffle(labels.map((_, i) => i)), 'int32');
    const mix = (t: tf.Tensor): tf.Tensor => tf.tidy(() => tf.add(tf.mul(t, lambda), tf.mul(tf.gather(t, partner), 1 - lambda)));
    batch = inputs.map(mix);
    owned.push(...batch);
    const mixedTarget = mix(target) as tf.Tensor2D;
    target.dispose();
    target = mixedTarget;
    if (weights) {
      const mixedWeights = mix(weights) as tf.Tensor1D;
      weights.dispose();
      weights = mixedWeights;
    }
    partner.dispose();
  }
  let correct = 0;
  const lossTensor = optimizer.minimize(
    () => {
      const out = head.apply(batch.length === 1 ? batch[0]! : batch, { training: true }) as tf.Tensor2D;
      const predicted = tf.argMax(out, 1).dataSync();
      correct = labels.reduce((n, label, i) => n + (predicted[i] === label ? 1 : 0), 0);
      return weightedCrossEntropy(out, target, weights);
    },
    true,
    variables,
  );
  const decay = options.weightDecay ?? 0;
  if (decay > 0) {
    const factor = 1 - optimizer.getLearningRate() * decay;
    for (const v of decayedVariables(head)) v.assign(tf.tidy(() => tf.mul(v, factor)));
  }
  const loss = lossTensor ? lossTensor.dataSync()[0]! : Number.NaN;
  if (lossTensor) lossTensor.dispose();
  tf.dispose([target, ...(weights ? [weights] : []), ...owned]);
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
