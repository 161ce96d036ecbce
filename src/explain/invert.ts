// Feature inversion (Mahendran & Vedaldi 2015): from grey noise, gradient descent on a picture so
// that its features at one layer match those of a real frame. What survives the inversion is
// what the layer keeps of the frame; what is lost, the layer threw away. Comparing the end of the
// pretrained base with the penultimate layer shows what the head keeps of the base's features.
//
// As in the class visualisation (class_vis.ts) the picture lives in pixel space ([0,1] RGB) and
// goes through the model's own preprocessing; updates are grey (the gradient averaged over the
// channels) because ultrasound is grey; total variation keeps the picture from turning to noise.
// Runs on TF.js alone; no file access.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import type { PretrainedCfg } from '../models/types.js';
import type { Rng } from '../util/rng.js';
import { blur, pixelsToNetwork } from './class_vis.js';
import { findLayer, layerOutput, modelTo } from './graph.js';

/** 'base': the end of the pretrained base (what the head reads); 'penultimate': cfg.featureLayer. */
export const INVERSION_LAYER_KINDS = ['base', 'penultimate'] as const;

/** Layers that belong to the heads (src/models/heads.ts), whatever the backbone. */
const HEAD_LAYER = /^(head_|cam_gap$|classifier$)/;

/**
 * The layer a name stands for: 'base' = the last layer before the head (its output is what the
 * head reads), 'penultimate' = the model's feature layer, anything else = that layer.
 */
export function resolveInversionLayer(model: tfl.LayersModel, cfg: PretrainedCfg, spec: string): string {
  if (spec === 'penultimate') return cfg.featureLayer;
  if (spec === 'base') {
    const first = model.layers.findIndex((l) => HEAD_LAYER.test(l.name));
    if (first <= 0) throw new PocovidError(`model "${model.name}" has no head_* / cam_gap layer: name the layer to invert instead of "base"`);
    return model.layers[first - 1]!.name;
  }
  return findLayer(model, spec, 'feature inversion').name;
}

export interface InversionOptions {
  steps?: number;
  /** Mean absolute change per step at the start, in [0,1] pixel units (decays linearly to a tenth). */
  stepSize?: number;
  /** Weight of the total variation (mean squared difference between neighbouring pixels; default 20). */
  tv?: number;
  /** Unconstrained colour updates (default false: grey). */
  color?: boolean;
  /** Standard deviation of the grey start noise around mid-grey, in [0,1] pixel units (default 0.02). */
  startNoise?: number;
  /**
   * Blur the picture (3×3 binomial) every this many steps (0 = never; default 4, as the class
   * visualisation): strided convolutions' gradients paint a checkerboard that TV alone removes slowly.
   */
  blurEvery?: number;
  rng: Rng;
  /** Called after every step with the relative feature distance. */
  onStep?: (step: number, distance: number) => void;
}

export interface InversionResult {
  layer: string;
  /** 8-bit RGB, H×W×3. */
  rgb: Uint8ClampedArray;
  height: number;
  width: number;
  /** ‖φ(x) − φ(target)‖ / ‖φ(target)‖ at the start (grey noise) and after each step. */
  distances: number[];
}

/**
 * A copy of an inversion stretched for display: its 1st–99th percentile of grey levels mapped to
 * 0–255. The descent leaves the picture near mid-grey (the features need only small departures
 * from it); stretched, what it drew can be seen. Every channel gets the same map.
 */
export function stretchForDisplay(rgb: Uint8ClampedArray): { rgb: Uint8ClampedArray; low: number; high: number } {
  const sorted = Uint8ClampedArray.from(rgb).sort();
  const low = sorted[Math.floor(0.01 * (sorted.length - 1))]!;
  const high = sorted[Math.ceil(0.99 * (sorted.length - 1))]!;
  const span = Math.max(1, high - low);
  return { rgb: rgb.map((v) => Math.round(((v - low) * 255) / span)), low, high };
}

/** Mean squared difference between vertical and horizontal neighbours of [1,H,W,C]. */
function totalVariation(x: tf.Tensor4D): tf.Scalar {
  const [, h, w, c] = x.shape;
  const dy = tf.sub(tf.slice(x, [0, 1, 0, 0], [1, h - 1, w, c]), tf.slice(x, [0, 0, 0, 0], [1, h - 1, w, c]));
  const dx = tf.sub(tf.slice(x, [0, 0, 1, 0], [1, h, w - 1, c]), tf.slice(x, [0, 0, 0, 0], [1, h, w - 1, c]));
  return tf.add(tf.mean(tf.square(dy)), tf.mean(tf.square(dx))) as tf.Scalar;
}

/**
 * Inverts the features of `target` (8-bit RGB at the model's input size) at `layer`.
 * Seeded by options.rng; leaves no tensors behind.
 */
export function invertFeatures(model: tfl.LayersModel, cfg: PretrainedCfg, layer: string, target: Uint8Array | Uint8ClampedArray, options: InversionOptions): InversionResult {
  const [h, w] = cfg.inputSize;
  if (target.length !== h * w * 3) throw new PocovidError(`feature inversion: the frame has ${target.length} values, the model takes ${h}×${w}×3`);
  const steps = options.steps ?? 200;
  const stepSize = options.stepSize ?? 0.01;
  const tvWeight = options.tv ?? 20;
  const features = modelTo(model, `features:${layer}`, layerOutput(findLayer(model, layer, 'feature inversion')));
  const { rng } = options;

  const goal = tf.tidy(() => {
    const pixels = tf.div(tf.tensor4d(Float32Array.from(target), [1, h, w, 3]), 255) as tf.Tensor4D;
    return tf.keep(features.apply(pixelsToNetwork(pixels, cfg), { training: false }) as tf.Tensor);
  });
  const goalNorm = tf.tidy(() => tf.sum(tf.square(goal)).dataSync()[0]!) || 1;
  const mismatch = (p: tf.Tensor4D): tf.Scalar =>
    tf.div(tf.sum(tf.square(tf.sub(features.apply(pixelsToNetwork(p, cfg), { training: false }) as tf.Tensor, goal))), goalNorm) as tf.Scalar;
  // The mismatch of the picture the gradient is taken at is read on the way: no second forward pass.
  let seen = Number.NaN;
  const objective = (p: tf.Tensor): tf.Scalar => {
    const m = mismatch(p as tf.Tensor4D);
    seen = Math.sqrt(m.dataSync()[0]!);
    return tf.add(m, tf.mul(tvWeight, totalVariation(p as tf.Tensor4D))) as tf.Scalar;
  };
  const distanceOf = (p: Float32Array): number => tf.tidy(() => Math.sqrt(mismatch(tf.tensor4d(p, [1, h, w, 3])).dataSync()[0]!));

  try {
    // Grey noise around mid-grey. Fainter than the class visualisation's start: descent removes
    // high-frequency noise only slowly, and what is left of it would read as texture the layer kept.
    const sigma = options.startNoise ?? 0.02;
    const blurEvery = options.blurEvery ?? 4;
    let pixels: Float32Array = new Float32Array(h * w * 3);
    for (let i = 0; i < h * w; i++) {
      const g = Math.min(1, Math.max(0, 0.5 + sigma * rng.normal()));
      pixels[i * 3] = pixels[i * 3 + 1] = pixels[i * 3 + 2] = g;
    }
    const distances: number[] = [];
    for (let step = 0; step < steps; step++) {
      const grad = tf.tidy(() => Float32Array.from(tf.grad(objective)(tf.tensor4d(pixels, [1, h, w, 3])).dataSync() as Float32Array));
      distances.push(seen);
      if (step > 0) options.onStep?.(step - 1, seen);
      if (!options.color) {
        for (let i = 0; i < h * w; i++) {
          const m = (grad[i * 3]! + grad[i * 3 + 1]! + grad[i * 3 + 2]!) / 3;
          grad[i * 3] = grad[i * 3 + 1] = grad[i * 3 + 2] = m;
        }
      }
      let meanAbs = 0;
      for (const g of grad) meanAbs += Math.abs(g) / grad.length;
      // Descent: a normalised step that shrinks to a tenth by the end, so the picture settles.
      const size = stepSize * (1 - (0.9 * step) / Math.max(1, steps - 1));
      const scale = meanAbs > 0 ? size / meanAbs : 0;
      for (let i = 0; i < pixels.length; i++) pixels[i] = Math.min(1, Math.max(0, pixels[i]! - scale * grad[i]!));
      if (blurEvery > 0 && (step + 1) % blurEvery === 0) pixels = blur(pixels, h, w);
    }
    distances.push(distanceOf(pixels));
    if (steps > 0) options.onStep?.(steps - 1, distances.at(-1)!);
    const rgb = new Uint8ClampedArray(pixels.length);
    for (let i = 0; i < pixels.length; i++) rgb[i] = Math.round(pixels[i]! * 255);
    return { layer, rgb, height: h, width: w, distances };
  } finally {
    goal.dispose();
  }
}
