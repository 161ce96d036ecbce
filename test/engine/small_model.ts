// A small model with every layer kind the model zoo trains through: conv (kernel 7/3/1, stride 1/2,
// same/valid), BatchNorm, ReLU/ReLU6, a residual add, max pool (3×3/2 and 2×2/2), depthwise conv
// (multiplier 2, stride 2), zero padding, average pooling, global average pooling, dropout, dense.
// The stem conv has no bias: BatchNorm right after it makes a bias's true gradient zero.
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../../src/engine/index.js';
import { randomValues } from './reference.js';

export const INPUT_SHAPE = [16, 16, 3] as const;
export const CLASSES = 3;

export function buildSmallModel(options: { dropout: boolean }): tfl.LayersModel {
  const input = tfl.input({ shape: [...INPUT_SHAPE] });
  const stem = tfl.layers.conv2d({ filters: 6, kernelSize: 7, strides: 2, padding: 'same', useBias: false }).apply(input) as tfl.SymbolicTensor;
  const normed = tfl.layers.batchNormalization().apply(stem) as tfl.SymbolicTensor;
  const act = tfl.layers.reLU().apply(normed) as tfl.SymbolicTensor;
  const pooled = tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(act) as tfl.SymbolicTensor;
  const branch = tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same' }).apply(pooled) as tfl.SymbolicTensor;
  const sum = tfl.layers.add().apply([pooled, branch]) as tfl.SymbolicTensor;
  const pooled2 = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }).apply(sum) as tfl.SymbolicTensor;
  const padded = tfl.layers.zeroPadding2d({ padding: 1 }).apply(pooled2) as tfl.SymbolicTensor;
  const depthwise = tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'valid' }).apply(padded) as tfl.SymbolicTensor;
  const act6 = tfl.layers.reLU({ maxValue: 6 }).apply(depthwise) as tfl.SymbolicTensor;
  const pointwise = tfl.layers.conv2d({ filters: 8, kernelSize: 1 }).apply(act6) as tfl.SymbolicTensor;
  const avg = tfl.layers.averagePooling2d({ poolSize: 1, strides: 1 }).apply(pointwise) as tfl.SymbolicTensor;
  let features = tfl.layers.globalAveragePooling2d({}).apply(avg) as tfl.SymbolicTensor;
  if (options.dropout) features = tfl.layers.dropout({ rate: 0.5, seed: 1 }).apply(features) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ units: CLASSES }).apply(features) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: logits });
  // Seeded weights: the same model on every run and on both backends.
  model.setWeights(model.getWeights().map((w, i) => tf.tidy(() => {
    const values = randomValues(w.shape, 100 + i);
    return tf.mul(tf.tensor(values, w.shape), w.shape.length > 1 ? 0.3 : 0.1);
  })));
  return model;
}

export function smallBatch(size: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const x = tf.tensor4d(randomValues([size, ...INPUT_SHAPE], 7), [size, ...INPUT_SHAPE]);
  const labels = Array.from({ length: size }, (_, i) => i % CLASSES);
  const y = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES), 'float32')) as tf.Tensor2D;
  return { x, y };
}

export function trainingLoss(model: tfl.LayersModel, x: tf.Tensor, y: tf.Tensor): tf.Scalar {
  const logits = model.apply(x, { training: true }) as tf.Tensor;
  return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
}
