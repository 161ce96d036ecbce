// A small CNN for grey frames trained from scratch: four blocks conv 3×3 → BatchNorm → ReLU →
// max-pool 2×2 (16/32/64/128 filters), then global average pooling → Dense 64 → ReLU → Dropout →
// softmax. ~0.4 GFLOP per 224×224 frame: the fast model for the demo, smoke runs and tests.
import * as tfl from '@tensorflow/tfjs-layers';
import { buildBackboneModel } from './cut.js';
import { apply, SeededInit } from './heads.js';
import { registerModel } from './registry.js';
import type { BuiltModel, ModelOptions, ModelSpec, PretrainedCfg } from './types.js';

type SymbolicTensor = tfl.SymbolicTensor;

const FILTERS = [16, 32, 64, 128];

export const GRAYSCALE_CNN_CONV_UNITS: readonly (readonly string[])[] = FILTERS.map((_, b) => [
  `block${b + 1}_conv`,
  `block${b + 1}_bn`,
]);

export function grayscaleCnnFeatures(input: SymbolicTensor, init: SeededInit): SymbolicTensor {
  let x = input;
  FILTERS.forEach((filters, b) => {
    const block = `block${b + 1}`;
    x = apply(
      tfl.layers.conv2d({
        filters,
        kernelSize: 3,
        padding: 'same',
        useBias: false,
        name: `${block}_conv`,
        kernelInitializer: init.conv(),
      }),
      x,
    );
    // Momentum 0.9 rather than Keras' 0.99: trained from scratch on a few hundred steps, the moving
    // statistics must catch up with the batch statistics or inference lags far behind training.
    x = apply(tfl.layers.batchNormalization({ momentum: 0.9, name: `${block}_bn` }), x);
    x = apply(tfl.layers.reLU({ name: `${block}_relu` }), x);
    x = apply(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `${block}_pool` }), x);
  });
  return x;
}

/** Luma / 255 centred on 0.5 with std 0.25: roughly unit scale for ultrasound frames. */
const cfg: PretrainedCfg = {
  id: 'grayscale_cnn.scratch',
  inputSize: [224, 224],
  channels: 1,
  channelOrder: 'rgb',
  mean: [0.5],
  std: [0.25],
  // The last conv block's activation, before its pooling: twice the resolution of block4_pool.
  camLayer: 'block4_relu',
  classifier: 'classifier',
  featureLayer: 'head_relu',
  sources: [],
};

/** Four 2× poolings. */
const MIN_INPUT = 16;

export function buildGrayscaleCnn(options: ModelOptions): BuiltModel {
  const head = { kind: 'pocovid', pooling: 'global', batchNorm: false } as const;
  const def = { name: 'grayscale_cnn', cfg, minInput: MIN_INPUT, units: GRAYSCALE_CNN_CONV_UNITS, defaultTrainableLayers: spec.defaultTrainableLayers, head };
  return buildBackboneModel(def, options, grayscaleCnnFeatures);
}

export const spec: ModelSpec = registerModel({
  name: 'grayscale_cnn',
  description: 'Small 4-block CNN for grey frames, trained from scratch (fast; demo and tests)',
  cfg,
  defaultTrainableLayers: GRAYSCALE_CNN_CONV_UNITS.length,
  build: buildGrayscaleCnn,
});
