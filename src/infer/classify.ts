// Network input → per-frame probabilities for an ensemble, with optional Monte-Carlo dropout.
// Uses TF.js only (no Node APIs): the page calls it too.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { meanClassStd, meanVector, type FrameScores } from './combine.js';

export interface ClassifyOptions {
  /** Monte-Carlo dropout passes per member (0 = none). */
  mcDropout?: number;
  /** Seed of the MC-dropout masks (a run is reproducible). */
  seed?: number;
  /** Frames per forward pass. */
  batchSize?: number;
}

type CallFn = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

/**
 * Runs `fn` with every Dropout layer of `model` active (inverted dropout with seeded masks) while
 * BatchNorm and the rest stay in inference mode: model.predict(training=true) would also switch
 * BatchNorm to batch statistics, which is not MC dropout.
 */
function withActiveDropout<T>(model: tfl.LayersModel, seed: number, fn: () => T): T {
  const dropouts = model.layers.filter((l) => l.getClassName() === 'Dropout');
  let nextSeed = seed;
  for (const layer of dropouts) {
    const rate = Number(layer.getConfig()['rate'] ?? 0);
    (layer as unknown as { call: CallFn }).call = (inputs) => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      if (rate <= 0) return tf.clone(x);
      const keep = tf.cast(tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', nextSeed++), rate), x.dtype);
      return tf.div(tf.mul(x, keep), 1 - rate);
    };
  }
  try {
    return fn();
  } finally {
    // Removing the own property restores the prototype's call.
    for (const layer of dropouts) delete (layer as unknown as { call?: CallFn }).call;
  }
}

export function hasDropout(model: tfl.LayersModel): boolean {
  return model.layers.some((l) => l.getClassName() === 'Dropout');
}

function predictRows(model: tfl.LayersModel, batch: tf.Tensor4D): number[][] {
  return tf.tidy(() => (model.predict(batch) as tf.Tensor).arraySync() as number[][]);
}

/**
 * One member's plain forward pass: `n` inputs packed row-major (n×H×W×C) → n×classes probabilities.
 * The CLI and server plug ONNX Runtime in here (src/onnx ForwardRunner); MC dropout needs TF.js.
 */
export type MemberForward = (batch: Float32Array, n: number) => Promise<Float32Array>;

function rowsOf(values: Float32Array, n: number): number[][] {
  const width = values.length / n;
  return Array.from({ length: n }, (_, i) => Array.from(values.subarray(i * width, (i + 1) * width)));
}

/**
 * classifyInputs with each member's plain forward pass done by `forwards[m]` (same order as
 * `members`); Monte-Carlo dropout passes still run on the TF.js members.
 */
export async function classifyInputsWith(
  members: tfl.LayersModel[],
  forwards: MemberForward[],
  inputs: Float32Array[],
  inputShape: [number, number, number],
  options: ClassifyOptions = {},
): Promise<FrameScores[]> {
  if (forwards.length !== members.length) throw new Error(`classifyInputsWith: ${forwards.length} forwards for ${members.length} members`);
  const batchSize = options.batchSize ?? 8;
  const passes = Math.max(0, Math.floor(options.mcDropout ?? 0));
  const perFrame: { members: number[][]; mcStd: number[] }[] = inputs.map(() => ({ members: [], mcStd: [] }));
  const [h, w, c] = inputShape;
  for (let start = 0; start < inputs.length; start += batchSize) {
    const chunk = inputs.slice(start, start + batchSize);
    const flat = new Float32Array(chunk.length * h * w * c);
    chunk.forEach((x, i) => flat.set(x, i * h * w * c));
    for (const [m, model] of members.entries()) {
      rowsOf(await forwards[m]!(flat, chunk.length), chunk.length).forEach((row, i) => perFrame[start + i]!.members.push(row));
      if (passes > 0 && hasDropout(model)) {
        const samples = chunk.map(() => [] as number[][]);
        const seed = (options.seed ?? 0) * 7919 + m * 104729 + start;
        const batch = tf.tensor4d(flat, [chunk.length, h, w, c]);
        try {
          withActiveDropout(model, seed, () => {
            for (let p = 0; p < passes; p++) predictRows(model, batch).forEach((row, i) => samples[i]!.push(row));
          });
        } finally {
          batch.dispose();
        }
        samples.forEach((s, i) => perFrame[start + i]!.mcStd.push(meanClassStd(s)));
      }
    }
  }
  return perFrame.map(toScores);
}

function toScores(f: { members: number[][]; mcStd: number[] }): FrameScores {
  return {
    probabilities: meanVector(f.members),
    ensembleStd: f.members.length > 1 ? meanClassStd(f.members) : null,
    mcDropoutStd: f.mcStd.length > 0 ? f.mcStd.reduce((a, b) => a + b, 0) / f.mcStd.length : null,
  };
}

/**
 * Classifies frames already converted by pixelsToInput (each H×W×C float32).
 * Returns, per frame, the members' mean probabilities and the spread figures.
 */
export function classifyInputs(
  members: tfl.LayersModel[],
  inputs: Float32Array[],
  inputShape: [number, number, number],
  options: ClassifyOptions = {},
): FrameScores[] {
  const batchSize = options.batchSize ?? 8;
  const passes = Math.max(0, Math.floor(options.mcDropout ?? 0));
  const perFrame: { members: number[][]; mcStd: number[] }[] = inputs.map(() => ({ members: [], mcStd: [] }));
  const [h, w, c] = inputShape;
  for (let start = 0; start < inputs.length; start += batchSize) {
    const chunk = inputs.slice(start, start + batchSize);
    const flat = new Float32Array(chunk.length * h * w * c);
    chunk.forEach((x, i) => flat.set(x, i * h * w * c));
    const batch = tf.tensor4d(flat, [chunk.length, h, w, c]);
    try {
      members.forEach((model, m) => {
        predictRows(model, batch).forEach((row, i) => perFrame[start + i]!.members.push(row));
        if (passes > 0 && hasDropout(model)) {
          const samples = chunk.map(() => [] as number[][]);
          const seed = (options.seed ?? 0) * 7919 + m * 104729 + start;
          withActiveDropout(model, seed, () => {
            for (let p = 0; p < passes; p++) predictRows(model, batch).forEach((row, i) => samples[i]!.push(row));
          });
          samples.forEach((s, i) => perFrame[start + i]!.mcStd.push(meanClassStd(s)));
        }
      });
    } finally {
      batch.dispose();
    }
  }
  return perFrame.map(toScores);
}
