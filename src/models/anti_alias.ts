// Anti-aliased downsampling (Zhang 2019, "Making convolutional networks shift-invariant again").
// Why: a stride-2 convolution keeps every second pixel of its output without low-passing it
// first, so detail finer than the new grid folds back as coarse patterns (aliasing). A sub-pixel
// shift, another resize kernel or one grey level of noise then moves the features of a frozen
// ImageNet backbone far more than it moves the picture, and decisions near the boundary flip
// (docs/results.md, "Stability of decisions"). Here the convolution runs at stride 1, its BatchNorm
// and ReLU6 as before, and a fixed 3×3 binomial low-pass keeps every second pixel. The pretrained
// kernels are used unchanged; the low-pass is an ordinary depthwise convolution with frozen
// weights, so a saved model (model.json) carries it to `predict`, `serve`, ONNX and the page.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { apply } from './heads.js';

type SymbolicTensor = tfl.SymbolicTensor;

/** Prefix of the low-pass layers' names: pretrained files never hold them (see headLayerPrefixes). */
export const ANTI_ALIAS_PREFIX = 'antialias_';

/** [1, 2, 1] ⊗ [1, 2, 1] / 16 for each of `channels` channels, as a depthwise kernel [3, 3, channels, 1]. */
export function binomialKernel(channels: number): tf.Tensor4D {
  const taps = [1, 2, 1];
  const values = new Float32Array(9 * channels);
  for (let y = 0; y < 3; y++) {
    for (let x = 0; x < 3; x++) values.fill((taps[y]! * taps[x]!) / 16, (y * 3 + x) * channels, (y * 3 + x + 1) * channels);
  }
  return tf.tensor4d(values, [3, 3, channels, 1]);
}

/**
 * `x` low-passed and subsampled by 2: a frozen depthwise binomial filter, stride 2, 'same' padding.
 * On an even-sized map TF's 'same' pads one row and column at the bottom and right, so output
 * pixel j is centred on input pixel 2j + 1, where the stride-2 convolution it replaces centred it.
 */
export function antiAliasedDownsample(x: SymbolicTensor, name: string): SymbolicTensor {
  const channels = x.shape[x.shape.length - 1];
  if (typeof channels !== 'number') throw new Error(`anti-aliasing after "${name}" needs a known channel count`);
  const layer = tfl.layers.depthwiseConv2d({
    kernelSize: 3,
    strides: 2,
    padding: 'same',
    useBias: false,
    trainable: false,
    name: `${ANTI_ALIAS_PREFIX}${name}`,
    depthwiseInitializer: 'zeros',
  });
  const y = apply(layer, x);
  const kernel = binomialKernel(channels);
  try {
    layer.setWeights([kernel]);
  } finally {
    kernel.dispose();
  }
  return y;
}
