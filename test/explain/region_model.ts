// A hand-built model whose class scores depend ONLY on the top-left quadrant of its input:
// crop the quadrant, pad it back with zeros, 1×1 conv (ReLU, no bias) → GAP → [BN] → [Dropout] →
// Dense softmax. Every explanation of class 0 must therefore point at the top-left quadrant.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { PretrainedCfg } from '../../src/models/types.js';

export const SIZE = 16;
export const HALF = SIZE / 2;

export function regionCfg(channels: 1 | 3 = 3): PretrainedCfg {
  return {
    id: 'region.test',
    inputSize: [SIZE, SIZE],
    channels,
    channelOrder: 'rgb',
    mean: new Array(channels).fill(0),
    std: new Array(channels).fill(1),
    camLayer: 'cam_conv',
    classifier: 'classifier',
    featureLayer: 'gap',
    sources: [],
  };
}

export interface RegionModelOptions {
  dropout?: number;
  batchNorm?: boolean;
  channels?: 1 | 3;
}

const FILTERS = 4;

export function regionModel(options: RegionModelOptions = {}): tfl.LayersModel {
  const channels = options.channels ?? 3;
  const apply = (layer: { apply(x: tfl.SymbolicTensor): unknown }, x: tfl.SymbolicTensor): tfl.SymbolicTensor => layer.apply(x) as tfl.SymbolicTensor;
  const input = tfl.input({ shape: [SIZE, SIZE, channels], name: 'input' });
  let x = apply(tfl.layers.cropping2D({ cropping: [[0, HALF], [0, HALF]], name: 'keep_top_left' }), input);
  x = apply(tfl.layers.zeroPadding2d({ padding: [[0, HALF], [0, HALF]], name: 'pad_back' }), x);
  const conv = tfl.layers.conv2d({ filters: FILTERS, kernelSize: 1, useBias: false, activation: 'relu', name: 'cam_conv' });
  x = apply(conv, x);
  x = apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }), x);
  const bn = options.batchNorm ? tfl.layers.batchNormalization({ name: 'bn' }) : undefined;
  if (bn) x = apply(bn, x);
  if (options.dropout !== undefined) x = apply(tfl.layers.dropout({ rate: options.dropout, name: 'drop' }), x);
  const dense = tfl.layers.dense({ units: 2, activation: 'softmax', name: 'classifier' });
  const output = apply(dense, x);
  const model = tfl.model({ inputs: input, outputs: output, name: 'region' });

  // Channel weights differ per filter and per channel (so colour updates can leave grey).
  const kernel = Array.from({ length: channels }, (_, c) => Array.from({ length: FILTERS }, (_, f) => (channels === 1 ? 1 : [0.5, 0.3, 0.2][c]!) * (1 + 0.25 * f)));
  conv.setWeights([tf.tensor4d(kernel.flat(), [1, 1, channels, FILTERS])]);
  // Class 0 rises with the quadrant's brightness, class 1 falls.
  dense.setWeights([tf.tensor2d(Array.from({ length: FILTERS }, () => [8, -8]), [FILTERS, 2]), tf.tensor1d([-1, 1])]);
  if (bn) {
    // Moving statistics far from any batch's own: batch-statistics mode would change the outputs.
    bn.setWeights([tf.ones([FILTERS]), tf.zeros([FILTERS]), tf.fill([FILTERS], 0.05), tf.fill([FILTERS], 0.02)]);
  }
  return model;
}

/** Deterministic inputs with values in [0.3, 0.9]. */
export function regionInputs(n: number, channels: 1 | 3 = 3, seed = 1): Float32Array {
  const out = new Float32Array(n * SIZE * SIZE * channels);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = 0.3 + 0.6 * (s / 2147483648);
  }
  return out;
}

/** Splits a row-major SIZE×SIZE map into the top-left quadrant's values and the rest's. */
export function quadrants(map: Float32Array): { inside: number[]; outside: number[] } {
  const inside: number[] = [];
  const outside: number[] = [];
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) (y < HALF && x < HALF ? inside : outside).push(map[y * SIZE + x]!);
  return { inside, outside };
}
