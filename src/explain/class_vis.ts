// Class visualisation by gradient ascent (Simonyan et al. 2013; jitter and blur as in Yosinski et
// al. 2015): find a picture the model scores highly for a class. Optimised in pixel space ([0,1]
// RGB) and mapped to network input with the model's own preprocessing, so the result is an image.
// Ultrasound is grey, so by default every update is grey: the gradient is averaged over the
// channels and the same step applied to all three; `color` lets the channels move apart.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { separableFilterInPlace } from '../models/blur.js';
import type { PretrainedCfg } from '../models/types.js';
import type { Rng } from '../util/rng.js';
import { classScorer, pickClass } from './scores.js';

export interface ClassVisOptions {
  steps?: number;
  /** Mean absolute change per step, in pixel units of [0,1] (the gradient is normalised). */
  stepSize?: number;
  /** Weight of the L2 penalty on the distance from mid-grey. */
  l2?: number;
  /** Largest random shift in pixels before each step (the picture is rolled back after). */
  jitter?: number;
  /** Blur the picture every this many steps (0 = never). */
  blurEvery?: number;
  /** Unconstrained colour updates (default false: grey updates). */
  color?: boolean;
  rng: Rng;
  /** Called after every step with the current picture (H×W×3 in [0,1]); used by tests. */
  onStep?: (step: number, pixels: Float32Array, score: number) => void;
}

export interface ClassVisResult {
  classIndex: number;
  /** 8-bit RGB, H×W×3. */
  rgb: Uint8ClampedArray;
  height: number;
  width: number;
  /** Class score (logit, or log p) at the start and after each step. */
  scores: number[];
}

/** [1,H,W,3] pixels in [0,1] → network input, exactly as pixelsToInput does it for 8-bit pixels / 255. */
export function pixelsToNetwork(pixels: tf.Tensor4D, cfg: PretrainedCfg): tf.Tensor4D {
  if (cfg.channels === 1) {
    const luma = tf.sum(tf.mul(pixels, tf.tensor1d([0.299, 0.587, 0.114])), -1, true);
    return tf.div(tf.sub(luma, cfg.mean[0] ?? 0), cfg.std[0] ?? 1) as tf.Tensor4D;
  }
  if (cfg.colour === 'grey') {
    const luma = tf.sum(tf.mul(pixels, tf.tensor1d([0.299, 0.587, 0.114])), -1, true);
    return tf.div(tf.sub(luma, tf.tensor1d(cfg.mean.slice(0, 3))), tf.tensor1d(cfg.std.slice(0, 3))) as tf.Tensor4D;
  }
  const ordered = cfg.channelOrder === 'bgr' ? tf.reverse(pixels, -1) : pixels;
  return tf.div(tf.sub(ordered, tf.tensor1d(cfg.mean.slice(0, 3))), tf.tensor1d(cfg.std.slice(0, 3))) as tf.Tensor4D;
}

/** Circular shift of an H×W×3 picture by (dy, dx). */
function roll(src: Float32Array, h: number, w: number, dy: number, dx: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let y = 0; y < h; y++) {
    const ty = (((y + dy) % h) + h) % h;
    for (let x = 0; x < w; x++) {
      const tx = (((x + dx) % w) + w) % w;
      const s = (y * w + x) * 3;
      const t = (ty * w + tx) * 3;
      out[t] = src[s]!;
      out[t + 1] = src[s + 1]!;
      out[t + 2] = src[s + 2]!;
    }
  }
  return out;
}

const BINOMIAL_3 = [0.25, 0.5, 0.25];

/** 3×3 binomial blur per channel (edges clamped); the same on every channel, so grey stays grey. */
export function blur(src: Float32Array, h: number, w: number): Float32Array {
  const out = Float32Array.from(src);
  for (let c = 0; c < 3; c++) separableFilterInPlace(out, h, w, 3, c, BINOMIAL_3);
  return out;
}

/** One picture for `classIndex`. Seeded by options.rng; leaves no tensors behind. */
export function visualiseClass(model: tfl.LayersModel, cfg: PretrainedCfg, classIndex: number, options: ClassVisOptions): ClassVisResult {
  const [h, w] = cfg.inputSize;
  const steps = options.steps ?? 100;
  const stepSize = options.stepSize ?? 0.02;
  const l2 = options.l2 ?? 1e-3;
  const jitter = options.jitter ?? Math.min(4, Math.floor(Math.min(h, w) / 16));
  const blurEvery = options.blurEvery ?? 4;
  const { rng } = options;
  const scorer = classScorer(model);

  // Grey noise around mid-grey: the same value in R, G and B.
  let pixels: Float32Array = new Float32Array(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    const g = Math.min(1, Math.max(0, 0.5 + 0.1 * rng.normal()));
    pixels[i * 3] = pixels[i * 3 + 1] = pixels[i * 3 + 2] = g;
  }
  const objective = (p: tf.Tensor): tf.Scalar => {
    const score = pickClass(scorer.scores(pixelsToNetwork(p as tf.Tensor4D, cfg)), classIndex);
    return tf.sub(score, tf.mul(l2, tf.sum(tf.square(tf.sub(p, 0.5))))) as tf.Scalar;
  };
  const scoreOf = (p: Float32Array): number =>
    tf.tidy(() => scorer.scores(pixelsToNetwork(tf.tensor4d(p, [1, h, w, 3]), cfg)).dataSync()[classIndex]!);

  const scores = [scoreOf(pixels)];
  for (let step = 0; step < steps; step++) {
    const dy = jitter > 0 ? rng.int(2 * jitter + 1) - jitter : 0;
    const dx = jitter > 0 ? rng.int(2 * jitter + 1) - jitter : 0;
    const shifted = roll(pixels, h, w, dy, dx);
    const gradShifted = tf.tidy(() => Float32Array.from(tf.grad(objective)(tf.tensor4d(shifted, [1, h, w, 3])).dataSync() as Float32Array));
    const grad = roll(gradShifted, h, w, -dy, -dx);
    if (!options.color) {
      for (let i = 0; i < h * w; i++) {
        const m = (grad[i * 3]! + grad[i * 3 + 1]! + grad[i * 3 + 2]!) / 3;
        grad[i * 3] = grad[i * 3 + 1] = grad[i * 3 + 2] = m;
      }
    }
    let meanAbs = 0;
    for (const g of grad) meanAbs += Math.abs(g) / grad.length;
    const scale = meanAbs > 0 ? stepSize / meanAbs : 0;
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.min(1, Math.max(0, pixels[i]! + scale * grad[i]!));
    if (blurEvery > 0 && (step + 1) % blurEvery === 0) pixels = blur(pixels, h, w);
    scores.push(scoreOf(pixels));
    options.onStep?.(step, pixels, scores.at(-1)!);
  }
  const rgb = new Uint8ClampedArray(pixels.length);
  for (let i = 0; i < pixels.length; i++) rgb[i] = Math.round(pixels[i]! * 255);
  return { classIndex, rgb, height: h, width: w, scores };
}
