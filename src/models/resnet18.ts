// ResNet-18 in torchvision's layout (names with '.' → '_') + the POCOVID head without BatchNorm:
// global average pooling → Dense 64 → ReLU → Dropout → softmax (the PyTorch re-implementation).
import * as tfl from '@tensorflow/tfjs-layers';
import { buildBackboneModel } from './cut.js';
import { apply, SeededInit } from './heads.js';
import { registerModel } from './registry.js';
import type { BuiltModel, ModelOptions, ModelSpec, PretrainedCfg } from './types.js';

type SymbolicTensor = tfl.SymbolicTensor;

/** torch.nn.BatchNorm2d defaults: eps 1e-5, momentum 0.1 (= Keras momentum 0.9). */
function batchNorm(name: string) {
  return tfl.layers.batchNormalization({ epsilon: 1e-5, momentum: 0.9, name });
}

/**
 * A conv without bias (the BatchNorm after it has one). Stride-2 convs pad explicitly like torch
 * (`padding = k // 2` on every side): TF 'same' would pad (0, 1) instead and shift the map.
 */
function conv(x: SymbolicTensor, name: string, filters: number, kernelSize: number, strides: number, init: SeededInit): SymbolicTensor {
  const pad = Math.floor(kernelSize / 2);
  const explicitPad = strides > 1 && pad > 0;
  if (explicitPad) x = apply(tfl.layers.zeroPadding2d({ padding: pad, name: `${name}_pad` }), x);
  return apply(
    tfl.layers.conv2d({
      filters,
      kernelSize,
      strides,
      padding: explicitPad || pad === 0 ? 'valid' : 'same',
      useBias: false,
      name,
      kernelInitializer: init.conv(),
    }),
    x,
  );
}

/**
 * torchvision BasicBlock `layerL_B`: conv1-bn1-relu1-conv2-bn2 (+ downsample on the identity) →
 * add → relu. relu1 is our name for the first use of torch's shared `relu` module.
 */
function basicBlock(x: SymbolicTensor, name: string, filters: number, strides: number, init: SeededInit): SymbolicTensor {
  let y = conv(x, `${name}_conv1`, filters, 3, strides, init);
  y = apply(batchNorm(`${name}_bn1`), y);
  y = apply(tfl.layers.reLU({ name: `${name}_relu1` }), y);
  y = conv(y, `${name}_conv2`, filters, 3, 1, init);
  y = apply(batchNorm(`${name}_bn2`), y);
  let identity = x;
  if (strides !== 1 || x.shape[3] !== filters) {
    identity = conv(x, `${name}_downsample_0`, filters, 1, strides, init);
    identity = apply(batchNorm(`${name}_downsample_1`), identity);
  }
  const sum = apply(tfl.layers.add({ name: `${name}_add` }), [y, identity]);
  return apply(tfl.layers.reLU({ name: `${name}_relu` }), sum);
}

const STAGES = [64, 128, 256, 512];

/** Conv units in torchvision's parameter order; trainableLayers counts them from the end. */
export const RESNET18_CONV_UNITS: readonly (readonly string[])[] = [
  ['conv1', 'bn1'],
  ...STAGES.flatMap((_, s) =>
    [0, 1].flatMap((b) => {
      const name = `layer${s + 1}_${b}`;
      const units = [
        [`${name}_conv1`, `${name}_bn1`],
        [`${name}_conv2`, `${name}_bn2`],
      ];
      if (s > 0 && b === 0) units.push([`${name}_downsample_0`, `${name}_downsample_1`]);
      return units;
    }),
  ),
];

/** input → layer4_1_relu (7×7×512 at 224). */
export function resnet18Features(input: SymbolicTensor, init: SeededInit): SymbolicTensor {
  let x = conv(input, 'conv1', 64, 7, 2, init);
  x = apply(batchNorm('bn1'), x);
  x = apply(tfl.layers.reLU({ name: 'relu' }), x);
  // Zero padding equals torch's -inf padding here because the input is post-ReLU (>= 0).
  x = apply(tfl.layers.zeroPadding2d({ padding: 1, name: 'maxpool_pad' }), x);
  x = apply(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid', name: 'maxpool' }), x);
  STAGES.forEach((filters, s) => {
    for (const b of [0, 1]) x = basicBlock(x, `layer${s + 1}_${b}`, filters, s > 0 && b === 0 ? 2 : 1, init);
  });
  return x;
}

const cfg: PretrainedCfg = {
  id: 'resnet18.tv_in1k',
  inputSize: [224, 224],
  channels: 3,
  channelOrder: 'rgb',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  camLayer: 'layer4_1_relu',
  classifier: 'classifier',
  featureLayer: 'head_relu',
  sources: [
    {
      url: 'https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors',
      sha256: '',
      fileName: 'resnet18.tv_in1k.safetensors',
      licence: 'BSD-3-Clause',
      format: 'torchvision-safetensors',
      dropped: ['fc.weight', 'fc.bias'],
    },
  ],
};

/** Total stride 32: smaller inputs would vanish before layer4. */
const MIN_INPUT = 32;

export function buildResnet18(options: ModelOptions): BuiltModel {
  const head = { kind: 'pocovid', pooling: 'global', batchNorm: false } as const;
  const def = { name: 'resnet18', cfg, minInput: MIN_INPUT, units: RESNET18_CONV_UNITS, defaultTrainableLayers: spec.defaultTrainableLayers, head };
  return buildBackboneModel(def, options, resnet18Features);
}

export const spec: ModelSpec = registerModel({
  name: 'resnet18',
  description: 'ResNet-18 (torchvision, ImageNet) + global average pooling, Dense 64, ReLU, Dropout, softmax',
  cfg,
  defaultTrainableLayers: 1,
  build: buildResnet18,
});
