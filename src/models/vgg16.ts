// POCOVID-Net (Born et al. 2020): the VGG-16 conv base (Keras layer names) with the paper's head
// AveragePooling 4×4 → Flatten → Dense 64 → BatchNorm → ReLU → Dropout → Dense softmax.
import * as tfl from '@tensorflow/tfjs-layers';
import { buildBackboneModel } from './cut.js';
import { apply, SeededInit } from './heads.js';
import { registerModel } from './registry.js';
import type { BuiltModel, ModelOptions, ModelSpec, PretrainedCfg } from './types.js';

type SymbolicTensor = tfl.SymbolicTensor;

/** [filters, convs] per block, as in Simonyan & Zisserman's configuration D. */
const VGG16_BLOCKS: readonly [number, number][] = [
  [64, 2],
  [128, 2],
  [256, 3],
  [512, 3],
  [512, 3],
];

/** block1_conv1 … block5_conv3 in graph order: the units that trainableLayers counts from the end. */
export const VGG16_CONV_UNITS: readonly (readonly string[])[] = VGG16_BLOCKS.flatMap(([, convs], b) =>
  Array.from({ length: convs }, (_, c) => [`block${b + 1}_conv${c + 1}`]),
);

/**
 * The VGG-16 conv base. `finalPool` false stops at block5_conv3 (the CAM model pools that map
 * globally itself, so that its class maps are exactly classifier weights × block5_conv3).
 */
export function vgg16Features(input: SymbolicTensor, init: SeededInit, finalPool: boolean): SymbolicTensor {
  let x = input;
  VGG16_BLOCKS.forEach(([filters, convs], b) => {
    const block = `block${b + 1}`;
    for (let c = 1; c <= convs; c++) {
      x = apply(
        tfl.layers.conv2d({
          filters,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          name: `${block}_conv${c}`,
          kernelInitializer: init.conv(),
        }),
        x,
      );
    }
    if (b < VGG16_BLOCKS.length - 1 || finalPool) {
      x = apply(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `${block}_pool` }), x);
    }
  });
  return x;
}

/** Both ImageNet weight sets for the VGG-16 conv base; block5_pool has no weights. */
export const VGG16_SOURCES: PretrainedCfg['sources'] = [
  {
    // The file Keras' VGG16(include_top=False, weights='imagenet') downloads (58,889,256 bytes);
    // Keras publishes only an md5 for it, so the sha256 is left for `pocovid weights` to record.
    url: 'https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
    sha256: '',
    fileName: 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
    licence: 'MIT (Keras code) / CC BY 4.0 (VGG weights)',
    format: 'keras-h5',
  },
  {
    url: 'https://huggingface.co/timm/vgg16.tv_in1k/resolve/main/model.safetensors',
    sha256: '',
    fileName: 'vgg16.tv_in1k.safetensors',
    licence: 'BSD-3-Clause',
    format: 'torchvision-safetensors',
    dropped: [
      'pre_logits.fc1.weight',
      'pre_logits.fc1.bias',
      'pre_logits.fc2.weight',
      'pre_logits.fc2.bias',
      'head.fc.weight',
      'head.fc.bias',
    ],
  },
];

/**
 * POCOVID-Net fed pixels / 255 (mean 0, std 1), RGB, 224×224. featureLayer is head_relu: the
 * 64-d penultimate activation after BatchNorm and ReLU (what the t-SNE plots of the paper show).
 */
export const VGG16_CFG: PretrainedCfg = {
  id: 'vgg16.pocovid_imagenet',
  inputSize: [224, 224],
  channels: 3,
  channelOrder: 'rgb',
  mean: [0, 0, 0],
  std: [1, 1, 1],
  camLayer: 'block5_conv3',
  classifier: 'classifier',
  featureLayer: 'head_relu',
  sources: VGG16_SOURCES,
};

/** After five 2× poolings the map must still fit the 4×4 average pooling. */
const MIN_INPUT = 128;

export function buildVgg16(options: ModelOptions): BuiltModel {
  const head = { kind: 'pocovid', pooling: 'avg4x4', batchNorm: true } as const;
  const def = { name: 'vgg16', cfg: VGG16_CFG, minInput: MIN_INPUT, units: VGG16_CONV_UNITS, defaultTrainableLayers: spec.defaultTrainableLayers, head };
  // The POCOVID head reads block5_pool; the linear head pools block5_conv3 itself (as vgg16_cam).
  return buildBackboneModel(def, options, (input, init) => vgg16Features(input, init, options.head !== 'linear'));
}

export const spec: ModelSpec = registerModel({
  name: 'vgg16',
  description: 'POCOVID-Net: VGG-16 conv base (ImageNet) + AvgPool 4x4, Dense 64, BatchNorm, ReLU, Dropout, softmax',
  cfg: VGG16_CFG,
  defaultTrainableLayers: 1,
  build: buildVgg16,
});
