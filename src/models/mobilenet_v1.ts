// MobileNet v1 (alpha 1.0) in Keras' layout, truncated after conv_pw_12 (7×7×1024 at 224),
// + the POCOVID head with global average pooling. A light backbone for CPU training.
import * as tfl from '@tensorflow/tfjs-layers';
import { antiAliasedDownsample } from './anti_alias.js';
import { buildBackboneModel } from './cut.js';
import { apply, SeededInit } from './heads.js';
import { registerModel } from './registry.js';
import type { BuiltModel, ModelOptions, ModelSpec, PretrainedCfg } from './types.js';

type SymbolicTensor = tfl.SymbolicTensor;

/** Pointwise filters of blocks 1..12, and the blocks whose depthwise conv has stride 2. */
const POINTWISE_FILTERS = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024];
const STRIDE_2_BLOCKS = [2, 4, 6, 12];
const BLOCKS = POINTWISE_FILTERS.length;
/** The stride-2 convolutions in graph order: the first n are anti-aliased by `--anti-alias n`. */
const STRIDED_CONVS: readonly string[] = ['conv1', ...STRIDE_2_BLOCKS.map((i) => `conv_dw_${i}`)];

/** Keras MobileNet: BatchNorm epsilon 1e-3 (its default momentum 0.99), then ReLU6. */
function bnRelu6(x: SymbolicTensor, name: string): SymbolicTensor {
  x = apply(tfl.layers.batchNormalization({ epsilon: 1e-3, name: `${name}_bn` }), x);
  return apply(tfl.layers.reLU({ maxValue: 6, name: `${name}_relu` }), x);
}

/** conv1, conv_dw_1, conv_pw_1, …, conv_pw_12 with their BatchNorms, in graph order. */
export const MOBILENET_V1_CONV_UNITS: readonly (readonly string[])[] = [
  ['conv1', 'conv1_bn'],
  ...Array.from({ length: BLOCKS }, (_, i) => [
    [`conv_dw_${i + 1}`, `conv_dw_${i + 1}_bn`],
    [`conv_pw_${i + 1}`, `conv_pw_${i + 1}_bn`],
  ]).flat(),
];

/**
 * input → conv_pw_12_relu. Keras pads stride-2 convs with ZeroPadding ((0,1),(0,1)) + 'valid';
 * on even-sized maps that is exactly what TF 'same' does, so 'same' is used throughout.
 * `antiAlias` (0–5): the first that many of the five stride-2 convs run at stride 1 and their ReLU6
 * output is low-passed before every second pixel is kept (src/models/anti_alias.ts); the
 * pretrained weights are the same.
 */
export function mobilenetV1Features(input: SymbolicTensor, init: SeededInit, antiAlias = 0): SymbolicTensor {
  const aliased = new Set(STRIDED_CONVS.slice(0, antiAlias));
  const stride = (name: string): number => (STRIDED_CONVS.includes(name) && !aliased.has(name) ? 2 : 1);
  const downsample = (x: SymbolicTensor, name: string): SymbolicTensor => (aliased.has(name) ? antiAliasedDownsample(x, name) : x);
  let x = apply(
    tfl.layers.conv2d({
      filters: 32,
      kernelSize: 3,
      strides: stride('conv1'),
      padding: 'same',
      useBias: false,
      name: 'conv1',
      kernelInitializer: init.conv(),
    }),
    input,
  );
  x = downsample(bnRelu6(x, 'conv1'), 'conv1');
  for (let i = 1; i <= BLOCKS; i++) {
    x = apply(
      tfl.layers.depthwiseConv2d({
        kernelSize: 3,
        strides: stride(`conv_dw_${i}`),
        padding: 'same',
        useBias: false,
        name: `conv_dw_${i}`,
        depthwiseInitializer: init.depthwise(3),
      }),
      x,
    );
    x = downsample(bnRelu6(x, `conv_dw_${i}`), `conv_dw_${i}`);
    x = apply(
      tfl.layers.conv2d({
        filters: POINTWISE_FILTERS[i - 1]!,
        kernelSize: 1,
        padding: 'same',
        useBias: false,
        name: `conv_pw_${i}`,
        kernelInitializer: init.conv(),
      }),
      x,
    );
    x = bnRelu6(x, `conv_pw_${i}`);
  }
  return x;
}

const cfg: PretrainedCfg = {
  id: 'mobilenet_v1.tfjs_imagenet_to_pw12',
  inputSize: [224, 224],
  channels: 3,
  channelOrder: 'rgb',
  // The weight file's metadata: "input 224x224x3 RGB scaled to [-1, 1]".
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
  camLayer: 'conv_pw_12_relu',
  classifier: 'classifier',
  featureLayer: 'head_relu',
  sources: [
    {
      // Converted from the TF.js MobileNet v1 release, which is many shard files rather than one
      // downloadable file; the converted file ships in ../shared/weights, so there is no URL.
      url: '',
      sha256: '03d5a1bea45300da32904abeac533da0b888e3530ec8e67294ec84c07c0b1bd3',
      fileName: 'mobilenet_v1_1.0_224_imagenet_to_pw12.safetensors',
      licence: 'Apache-2.0',
      format: 'keras-safetensors',
    },
  ],
};

/** Total stride 32. */
const MIN_INPUT = 32;

export function buildMobilenetV1(options: ModelOptions): BuiltModel {
  const head = { kind: 'pocovid', pooling: 'global', batchNorm: true } as const;
  const def = { name: 'mobilenet_v1', cfg, minInput: MIN_INPUT, units: MOBILENET_V1_CONV_UNITS, defaultTrainableLayers: spec.defaultTrainableLayers, head, stridedConvs: STRIDED_CONVS.length };
  return buildBackboneModel(def, options, (input, init) => mobilenetV1Features(input, init, options.antiAlias ?? 0));
}

export const spec: ModelSpec = registerModel({
  name: 'mobilenet_v1',
  description: 'MobileNet v1 1.0 (ImageNet, up to conv_pw_12) + global average pooling, Dense 64, BatchNorm, ReLU, Dropout, softmax',
  cfg,
  defaultTrainableLayers: 2,
  build: buildMobilenetV1,
});
