// POCOVID-Net's CAM variant: VGG-16 conv base → global average pooling → Dropout → softmax.
// The classifier reads block5_conv3 through one global pooling, so the class activation map of
// class c is exactly Σ_k w[k, c] · block5_conv3[:, :, k] (Zhou et al. 2016), at 14×14.
import { buildBackboneModel } from './cut.js';
import { registerModel } from './registry.js';
import type { BuiltModel, ModelOptions, ModelSpec, PretrainedCfg } from './types.js';
import { VGG16_CFG, VGG16_CONV_UNITS, vgg16Features } from './vgg16.js';

/** Same input convention and weights as POCOVID-Net (pixels / 255); featureLayer is the 512-d pooled map. */
const cfg: PretrainedCfg = { ...VGG16_CFG, id: 'vgg16_cam.pocovid_imagenet', featureLayer: 'cam_gap' };

/** Four 2× poolings: anything from 32 up keeps a 2×2 map for the class activation map. */
const MIN_INPUT = 32;

export function buildVgg16Cam(options: ModelOptions): BuiltModel {
  const def = { name: 'vgg16_cam', cfg, minInput: MIN_INPUT, units: VGG16_CONV_UNITS, defaultTrainableLayers: spec.defaultTrainableLayers, head: { kind: 'linear' } as const };
  return buildBackboneModel(def, options, (input, init) => vgg16Features(input, init, false));
}

export const spec: ModelSpec = registerModel({
  name: 'vgg16_cam',
  description: 'POCOVID-Net CAM variant: VGG-16 conv base (ImageNet) + global average pooling, Dropout, softmax',
  cfg,
  defaultTrainableLayers: 1,
  build: buildVgg16Cam,
});
