// Saliency (Simonyan, Vedaldi & Zisserman 2013): |d score_c / d input| at every pixel, maximum over
// channels. The score is the class logit (see scores.ts).
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { GradCamResult } from './gradcam.js';
import { classScorer, pickClass } from './scores.js';

export interface SaliencyResult extends GradCamResult {
  /** The largest |gradient| before normalisation (0 means the score ignores the input). */
  peak: number;
}

/** Saliency map of one input [1, H, W, C], normalised to a maximum of 1. Leaves no tensors behind. */
export function saliencyMap(model: tfl.LayersModel, input: tf.Tensor, classIndex?: number): SaliencyResult {
  if (input.rank !== 4 || input.shape[0] !== 1) throw new Error(`saliency expects one input of shape [1,H,W,C], got [${input.shape}]`);
  const [, height, width] = input.shape as [number, number, number, number];
  const scorer = classScorer(model);
  const chosen = classIndex ?? tf.tidy(() => tf.argMax(scorer.scores(input), -1).dataSync()[0]!);
  const magnitude = tf.tidy(() => {
    const grad = tf.grad((x: tf.Tensor) => pickClass(scorer.scores(x), chosen))(input);
    return tf.reshape(tf.max(tf.abs(grad), -1), [height * width]);
  });
  const values = Float32Array.from(magnitude.dataSync() as Float32Array);
  magnitude.dispose();
  let peak = 0;
  for (const v of values) if (v > peak) peak = v;
  if (peak > 0) for (let i = 0; i < values.length; i++) values[i]! /= peak;
  return { map: values, height, width, classIndex: chosen, peak };
}
