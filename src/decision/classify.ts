// Network input → per-frame probabilities for an ensemble, with optional Monte-Carlo dropout.
// Uses TF.js only (no Node APIs): the page calls it too.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mcDropout } from '../explain/uncertainty.js';
import { createRng } from '../util/rng.js';
import { meanClassStd, meanVector, type FrameScores } from './combine.js';
import { checkProbabilities } from './finite.js';

export interface ClassifyOptions {
  /** Monte-Carlo dropout passes per member (0 = none). */
  mcDropout?: number;
  /** Seed of the MC-dropout masks (a run is reproducible). */
  seed?: number;
  /** Frames per forward pass. */
  batchSize?: number;
  /**
   * Called (and awaited) after each chunk of frames has been through every member: frames done so
   * far and in all. The page reports progress per frame with it, and may throw from it to cancel.
   */
  onProgress?: (done: number, total: number) => void | Promise<void>;
}

export function hasDropout(model: tfl.LayersModel): boolean {
  return model.layers.some((l) => l.getClassName() === 'Dropout');
}

/**
 * One member's plain forward pass: `n` inputs packed row-major (n×H×W×C) → n×classes probabilities.
 * The CLI and server plug ONNX Runtime in here (src/onnx ForwardRunner); MC dropout needs TF.js.
 */
export type MemberForward = (batch: Float32Array, n: number) => Promise<Float32Array>;

/** Up to `batchSize` consecutive inputs packed row-major, starting at input `start`. */
export interface Chunk {
  start: number;
  n: number;
  flat: Float32Array;
}

/** The inputs in batches of `batchSize`, each packed into one row-major array (n×H×W×C). */
export function* chunksOf(inputs: readonly Float32Array[], inputShape: [number, number, number], batchSize: number): Generator<Chunk> {
  const size = inputShape[0] * inputShape[1] * inputShape[2];
  for (let start = 0; start < inputs.length; start += batchSize) {
    const chunk = inputs.slice(start, start + batchSize);
    const flat = new Float32Array(chunk.length * size);
    chunk.forEach((x, i) => flat.set(x, i * size));
    yield { start, n: chunk.length, flat };
  }
}

function rowsOf(values: Float32Array, n: number): number[][] {
  const width = values.length / n;
  return Array.from({ length: n }, (_, i) => Array.from(values.subarray(i * width, (i + 1) * width)));
}

/** Plain TF.js forward pass of one member over a chunk: one probability row per frame. */
function predictRows(model: tfl.LayersModel, chunk: Chunk, inputShape: [number, number, number]): number[][] {
  return tf.tidy(() => (model.predict(tf.tensor4d(chunk.flat, [chunk.n, ...inputShape])) as tf.Tensor).arraySync() as number[][]);
}

/**
 * Per frame of the chunk: the mean over classes of the std over MC-dropout passes of member `m`
 * (src/explain/uncertainty: Dropout layers only, BatchNorm stays in inference mode); null when
 * MC dropout is off or the member has no Dropout. Seeded from (seed, member, chunk start).
 */
function mcDropoutStds(model: tfl.LayersModel, m: number, chunk: Chunk, inputShape: [number, number, number], options: ClassifyOptions): number[] | null {
  const passes = Math.max(0, Math.floor(options.mcDropout ?? 0));
  if (passes === 0 || !hasDropout(model)) return null;
  const rng = createRng((options.seed ?? 0) * 7919 + m * 104729 + chunk.start);
  const batch = tf.tensor4d(chunk.flat, [chunk.n, ...inputShape]);
  try {
    return mcDropout(model, batch, passes, rng).std.map((perClass) => perClass.reduce((a, b) => a + b, 0) / perClass.length);
  } finally {
    batch.dispose();
  }
}

/** Per frame: each member's probabilities and MC-dropout spread, in member order. */
interface FrameAccumulator {
  members: number[][];
  mcStd: number[];
}

/** Every member's rows are checked here, before anything is combined: NaN must never become a label. */
function collect(perFrame: FrameAccumulator[], m: number, chunk: Chunk, rows: number[][], mcStds: number[] | null): void {
  rows.forEach((row, i) => checkProbabilities(row, `member-${m}`, chunk.start + i));
  rows.forEach((row, i) => perFrame[chunk.start + i]!.members.push(row));
  mcStds?.forEach((std, i) => perFrame[chunk.start + i]!.mcStd.push(std));
}

function toScores(f: FrameAccumulator): FrameScores {
  return {
    probabilities: meanVector(f.members),
    ensembleStd: f.members.length > 1 ? meanClassStd(f.members) : null,
    mcDropoutStd: f.mcStd.length > 0 ? f.mcStd.reduce((a, b) => a + b, 0) / f.mcStd.length : null,
  };
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
  const perFrame: FrameAccumulator[] = inputs.map(() => ({ members: [], mcStd: [] }));
  for (const chunk of chunksOf(inputs, inputShape, options.batchSize ?? 8)) {
    for (const [m, model] of members.entries()) {
      const rows = rowsOf(await forwards[m]!(chunk.flat, chunk.n), chunk.n);
      collect(perFrame, m, chunk, rows, mcDropoutStds(model, m, chunk, inputShape, options));
    }
    await options.onProgress?.(chunk.start + chunk.n, inputs.length);
  }
  return perFrame.map(toScores);
}

/**
 * Classifies frames already converted by pixelsToInput (each H×W×C float32), every pass on TF.js.
 * Returns, per frame, the members' mean probabilities and the spread figures.
 */
export function classifyInputs(
  members: tfl.LayersModel[],
  inputs: Float32Array[],
  inputShape: [number, number, number],
  options: ClassifyOptions = {},
): FrameScores[] {
  const perFrame: FrameAccumulator[] = inputs.map(() => ({ members: [], mcStd: [] }));
  for (const chunk of chunksOf(inputs, inputShape, options.batchSize ?? 8)) {
    for (const [m, model] of members.entries()) {
      collect(perFrame, m, chunk, predictRows(model, chunk, inputShape), mcDropoutStds(model, m, chunk, inputShape, options));
    }
  }
  return perFrame.map(toScores);
}
