// Occlusion sensitivity (Zeiler & Fergus 2014): slide a square patch over the input, and record how
// much the class probability drops while it is covered. Forward passes go through a pluggable
// function so that a faster runtime (ONNX Runtime, src/onnx) can do them; gradients are not needed.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import type { PretrainedCfg } from '../models/types.js';
import type { ForwardRunner } from '../onnx/runtime.js';

/** `n` inputs (n×H×W×C float32, preprocessed) → n×classes probabilities. */
export type ForwardFn = (batch: Float32Array, n: number) => Float32Array | Promise<Float32Array>;

/**
 * What covers the patch: 'mean' = the input's own per-channel mean, 'zero' = 0 in network-input
 * units, 'black' = a black pixel (0) preprocessed by cfg, a number = that network-input value.
 */
export type OcclusionFill = 'mean' | 'zero' | 'black' | number;
export const OCCLUSION_FILLS = ['mean', 'zero', 'black'] as const;

export interface OcclusionOptions {
  /** Side of the square patch in input pixels (default: 1/7 of the shorter side, as 32 of 224). */
  patch?: number;
  /** Step between patch positions (default: the patch side; a 7×7 grid, since each position costs a forward pass). */
  stride?: number;
  fill?: OcclusionFill;
  /** Occluded copies per forward call (default 16). */
  batchSize?: number;
  /** Class to explain (default: the predicted one). */
  classIndex?: number;
  /** Needed for fill 'black'. */
  cfg?: PretrainedCfg;
}

export interface OcclusionResult {
  /** Positive drops normalised to a maximum of 1 (row-major H×W). */
  map: Float32Array;
  /** Mean drop in probability over the patches covering each pixel (negative: covering helps the class). */
  drop: Float32Array;
  height: number;
  width: number;
  classIndex: number;
  /** Probability of the class on the untouched input. */
  baseline: number;
  /** Patch positions evaluated. */
  positions: number;
}

/** model.predict as a ForwardFn (the default). */
export function layersForward(model: tfl.LayersModel, shape: [number, number, number]): ForwardFn {
  return (batch, n) =>
    tf.tidy(() => {
      const out = model.predict(tf.tensor4d(batch, [n, ...shape])) as tf.Tensor;
      return Float32Array.from(out.dataSync() as Float32Array);
    });
}

/** A ForwardRunner (ONNX Runtime or TF.js, src/onnx) over a single-output classifier as a ForwardFn. */
export function runnerForward(runner: ForwardRunner): ForwardFn {
  if (runner.outputShapes.length !== 1) throw new PocovidError(`occlusion needs a model with one output (probabilities); this one has ${runner.outputShapes.length}`);
  return async (batch, n) => (await runner.run(batch, n))[0]!;
}

/** Patch starts along one side: every `stride`, plus one flush with the far edge so all pixels are covered. */
function starts(side: number, patch: number, stride: number): number[] {
  const out: number[] = [];
  for (let s = 0; s + patch <= side; s += stride) out.push(s);
  if (out.at(-1) !== side - patch) out.push(side - patch);
  return out;
}

function fillValues(input: Float32Array, shape: [number, number, number], fill: OcclusionFill, cfg?: PretrainedCfg): number[] {
  const [h, w, c] = shape;
  if (typeof fill === 'number') return new Array<number>(c).fill(fill);
  if (fill === 'zero') return new Array<number>(c).fill(0);
  if (fill === 'black') {
    if (!cfg) throw new PocovidError('occlusion fill "black" needs the model\'s pretrained config');
    return Array.from({ length: c }, (_, k) => (0 - (cfg.mean[k] ?? 0)) / (cfg.std[k] ?? 1));
  }
  if (fill === 'mean') {
    const sums = new Array<number>(c).fill(0);
    for (let i = 0; i < h * w; i++) for (let k = 0; k < c; k++) sums[k]! += input[i * c + k]!;
    return sums.map((s) => s / (h * w));
  }
  throw new PocovidError(`unknown occlusion fill "${String(fill)}"; valid: ${OCCLUSION_FILLS.join(', ')} or a number`);
}

/** Occlusion map of one preprocessed input (H×W×C). */
export async function occlusionMap(
  forward: ForwardFn,
  input: Float32Array,
  shape: [number, number, number],
  options: OcclusionOptions = {},
): Promise<OcclusionResult> {
  const [h, w, c] = shape;
  if (input.length !== h * w * c) throw new Error(`occlusion: expected ${h}x${w}x${c} values, got ${input.length}`);
  const patch = options.patch ?? Math.max(1, Math.round(Math.min(h, w) / 7));
  const stride = options.stride ?? patch;
  if (!(Number.isInteger(patch) && patch >= 1 && patch <= Math.min(h, w))) {
    throw new PocovidError(`occlusion patch must be an integer in [1, ${Math.min(h, w)}], got ${patch}`);
  }
  if (!(Number.isInteger(stride) && stride >= 1)) throw new PocovidError(`occlusion stride must be a positive integer, got ${stride}`);
  const batchSize = Math.max(1, options.batchSize ?? 16);
  const fill = fillValues(input, shape, options.fill ?? 'mean', options.cfg);

  const base = await forward(input, 1);
  const classes = base.length;
  let classIndex = options.classIndex ?? 0;
  if (options.classIndex === undefined) for (let k = 1; k < classes; k++) if (base[k]! > base[classIndex]!) classIndex = k;
  const baseline = base[classIndex]!;

  const positions = starts(h, patch, stride).flatMap((y) => starts(w, patch, stride).map((x) => [y, x] as const));
  const dropSum = new Float64Array(h * w);
  const covered = new Uint32Array(h * w);
  for (let first = 0; first < positions.length; first += batchSize) {
    const chunk = positions.slice(first, first + batchSize);
    const batch = new Float32Array(chunk.length * input.length);
    chunk.forEach(([y0, x0], b) => {
      const offset = b * input.length;
      batch.set(input, offset);
      for (let y = y0; y < y0 + patch; y++) {
        for (let x = x0; x < x0 + patch; x++) for (let k = 0; k < c; k++) batch[offset + (y * w + x) * c + k] = fill[k]!;
      }
    });
    const probs = await forward(batch, chunk.length);
    chunk.forEach(([y0, x0], b) => {
      const drop = baseline - probs[b * classes + classIndex]!;
      for (let y = y0; y < y0 + patch; y++) {
        for (let x = x0; x < x0 + patch; x++) {
          dropSum[y * w + x]! += drop;
          covered[y * w + x]! += 1;
        }
      }
    });
  }
  const drop = new Float32Array(h * w);
  let peak = 0;
  for (let i = 0; i < h * w; i++) {
    drop[i] = covered[i]! > 0 ? dropSum[i]! / covered[i]! : 0;
    if (drop[i]! > peak) peak = drop[i]!;
  }
  const map = new Float32Array(h * w);
  if (peak > 0) for (let i = 0; i < h * w; i++) map[i] = Math.max(0, drop[i]!) / peak;
  return { map, drop, height: h, width: w, classIndex, baseline, positions: positions.length };
}
