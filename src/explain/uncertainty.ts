// Monte-Carlo dropout (Gal & Ghahramani 2016): N stochastic passes with ONLY the Dropout layers
// active. model.predict(training=true) would also switch BatchNorm to batch statistics, which makes
// a frame's output depend on the rest of its batch; here every other layer stays in inference mode.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Rng } from '../util/rng.js';
import { deterministicFrontier, forwardWith } from './graph.js';

export interface McDropoutResult {
  passes: number;
  /** Per input: mean class probabilities over the passes. */
  mean: number[][];
  /** Per input: standard deviation of each class probability over the passes. */
  std: number[][];
  /** Per input: the std of the mean's arg-max class (the figure shown next to a prediction). */
  predictedStd: number[];
  /** samples[p][i][k]: pass p, input i, class k (video figures are computed from these). */
  samples: number[][][];
}

/** Rate of a Dropout layer, or undefined for other layers. */
function dropoutRate(layer: tfl.LayersModel['layers'][number]): number | undefined {
  if (layer.getClassName() !== 'Dropout') return undefined;
  return Number(layer.getConfig()['rate'] ?? 0);
}

/** One stochastic pass: inverted dropout with masks seeded from `rng`, everything else in inference mode. */
function dropoutPass(model: tfl.LayersModel, inputs: tf.Tensor, rng: Rng, known: ReadonlyMap<number, tf.Tensor>): number[][] {
  return tf.tidy(() => {
    const out = forwardWith(model, inputs, (layer, x) => {
      const rate = dropoutRate(layer);
      if (rate === undefined || rate <= 0) return undefined;
      const mask = tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', rng.int(2 ** 31 - 1)), rate);
      return tf.div(tf.mul(x, tf.cast(mask, x.dtype)), 1 - rate);
    }, known);
    return out.arraySync() as number[][];
  });
}

/**
 * `passes` dropout-only stochastic forward passes over `inputs` ([n, H, W, C]); seeded by `rng`.
 * With no active Dropout layer every pass equals model.predict and the std is 0.
 */
export function mcDropout(model: tfl.LayersModel, inputs: tf.Tensor, passes: number, rng: Rng): McDropoutResult {
  if (!(Number.isInteger(passes) && passes >= 1)) throw new Error(`MC dropout needs a positive whole number of passes, got ${passes}`);
  if (inputs.rank !== 4) throw new Error(`MC dropout expects inputs of shape [n,H,W,C], got [${inputs.shape}]`);
  // The layers before the first active Dropout give the same values in every pass: run them once.
  const known = deterministicFrontier(model, inputs, (layer) => (dropoutRate(layer) ?? 0) > 0);
  const samples: number[][][] = [];
  try {
    for (let p = 0; p < passes; p++) samples.push(dropoutPass(model, inputs, rng, known));
  } finally {
    for (const t of known.values()) t.dispose();
  }
  const n = inputs.shape[0]!;
  const classes = samples[0]![0]?.length ?? 0;
  const mean: number[][] = [];
  const std: number[][] = [];
  for (let i = 0; i < n; i++) {
    const stats = meanStd(samples.map((s) => s[i]!), classes);
    mean.push(stats.mean);
    std.push(stats.std);
  }
  const predictedStd = mean.map((m, i) => std[i]![m.indexOf(Math.max(...m))]!);
  return { passes, mean, std, predictedStd, samples };
}

function meanStd(vectors: number[][], classes: number): { mean: number[]; std: number[] } {
  const mean = new Array<number>(classes).fill(0);
  for (const v of vectors) for (let k = 0; k < classes; k++) mean[k]! += v[k]! / vectors.length;
  const std = mean.map((m, k) => Math.sqrt(vectors.reduce((acc, v) => acc + (v[k]! - m) ** 2, 0) / vectors.length));
  return { mean, std };
}

export interface VideoUncertainty {
  /** Mean over passes of the video's mean frame probabilities. */
  mean: number[];
  /** Std over passes of the video's mean frame probabilities (the video-level decision's spread). */
  std: number[];
  predictedStd: number;
}

/**
 * Video-level MC-dropout figures for the frames `frameIndices` of a result: in each pass the video's
 * probabilities are the mean of its frames' (as the video decision is made), then mean and std over passes.
 */
export function videoMcDropout(result: McDropoutResult, frameIndices: number[]): VideoUncertainty {
  if (frameIndices.length === 0) throw new Error('videoMcDropout: no frames');
  const classes = result.mean[0]?.length ?? 0;
  const perPass = result.samples.map((pass) => {
    const v = new Array<number>(classes).fill(0);
    for (const i of frameIndices) for (let k = 0; k < classes; k++) v[k]! += pass[i]![k]! / frameIndices.length;
    return v;
  });
  const { mean, std } = meanStd(perPass, classes);
  return { mean, std, predictedStd: std[mean.indexOf(Math.max(...mean))]! };
}
