// A tiny Layers model and config for inference tests (independent of the model zoo).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { PretrainedCfg } from '../../src/models/types.js';

export const TINY_CLASSES = ['covid', 'pneumonia', 'regular'];

export function tinyCfg(size = 32): PretrainedCfg {
  return {
    id: 'tiny.test',
    inputSize: [size, size],
    channels: 3,
    channelOrder: 'rgb',
    mean: [0.5, 0.5, 0.5],
    std: [0.25, 0.25, 0.25],
    camLayer: 'cam_conv',
    classifier: 'classifier',
    featureLayer: 'gap',
    sources: [],
  };
}

/** conv → conv (CAM layer) → GAP → [Dense+Dropout] → Dense softmax. */
export function tinyModel(seed: number, options: { hidden?: boolean; size?: number; filters?: [number, number] } = {}): tfl.LayersModel {
  const size = options.size ?? 32;
  const [f1, f2] = options.filters ?? [4, 8];
  const input = tfl.input({ shape: [size, size, 3], name: 'input' });
  let x = tfl.layers
    .conv2d({ filters: f1, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'conv1', kernelInitializer: tfl.initializers.glorotUniform({ seed }) })
    .apply(input) as tfl.SymbolicTensor;
  x = tfl.layers
    .conv2d({ filters: f2, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'cam_conv', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) })
    .apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  if (options.hidden !== false) {
    x = tfl.layers.dense({ units: 16, activation: 'relu', name: 'fc', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 2 }) }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.dropout({ rate: 0.5, name: 'drop' }).apply(x) as tfl.SymbolicTensor;
  }
  const out = tfl.layers
    .dense({ units: 3, activation: 'softmax', name: 'classifier', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 3 }), biasInitializer: 'zeros' })
    .apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: `tiny_${seed}` });
}

/**
 * A fold-ensemble member: tinyModel's convolutions from `trunkSeed`, its classifier from `headSeed`
 * (the kernel of tinyModel(headSeed), a random bias). `frozenTrunk`: only the classifier trainable.
 */
export function tinyMember(trunkSeed: number, headSeed: number, options: { frozenTrunk?: boolean } = {}): tfl.LayersModel {
  const model = tinyModel(trunkSeed, { hidden: false });
  const head = tinyModel(headSeed, { hidden: false });
  const bias = tf.randomUniform([3], -1, 1, 'float32', headSeed);
  model.getLayer('classifier').setWeights([head.getLayer('classifier').getWeights()[0]!, bias]);
  tf.dispose(bias);
  head.dispose();
  if (options.frozenTrunk) for (const layer of model.layers) layer.trainable = layer.name === 'classifier';
  return model;
}
