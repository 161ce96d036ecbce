// Architecture facts other parts rely on: exact parameter counts, layer names (weight loaders),
// torch-style padding, where each model is cut, and the MobileNet weight file's names and shapes.
import { existsSync, openSync, readSync, closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine, tf } from '../../src/engine/index.js';
import { countParams, createModel, disposeBuiltModel, type BuiltModel } from '../../src/models/index.js';
import { itOnRealData } from '../helpers/prerequisites.js';

await initEngine();

function withModel<T>(built: BuiltModel, fn: (built: BuiltModel) => T): T {
  try {
    return fn(built);
  } finally {
    disposeBuiltModel(built);
  }
}

const HEAD_PREFIXES = ['head_', 'cam_', 'classifier'];
const isHeadLayer = (name: string): boolean => HEAD_PREFIXES.some((prefix) => name.startsWith(prefix));
const size = (shape: (number | null)[]): number => shape.reduce<number>((n, d) => n * (d ?? 1), 1);

/** name → shape of every weight outside the head, named "layer/weight" like Keras files. */
function convBaseWeights(model: tfl.LayersModel): Map<string, number[]> {
  const weights = new Map<string, number[]>();
  for (const layer of model.layers) {
    if (isHeadLayer(layer.name)) continue;
    for (const weight of layer.weights) weights.set(weight.originalName, weight.shape as number[]);
  }
  return weights;
}

const trainableLayerNames = (model: tfl.LayersModel): string[] =>
  model.layers.filter((layer) => layer.trainableWeights.length > 0).map((layer) => layer.name);

describe('vgg16 (POCOVID-Net)', () => {
  it('has exactly the paper\'s 2,392,963 trainable and 12,355,008 non-trainable parameters', () => {
    withModel(createModel('vgg16', { numClasses: 3 }), (built) => {
      expect(countParams(built.model)).toEqual({ trainable: 2_392_963, nonTrainable: 12_355_008 });
      expect(trainableLayerNames(built.model)).toEqual(['block5_conv3', 'head_dense', 'head_bn', 'classifier']);
      expect(built.backbone!.outputs.map((t) => t.sourceLayer.name)).toEqual(['block5_conv2']);
      expect(built.model.layers.map((layer) => layer.name)).toEqual([
        'input',
        ...[1, 2, 3, 4, 5].flatMap((b) => [
          ...Array.from({ length: b <= 2 ? 2 : 3 }, (_, c) => `block${b}_conv${c + 1}`),
          `block${b}_pool`,
        ]),
        'head_pool', 'head_flatten', 'head_dense', 'head_bn', 'head_relu', 'head_dropout', 'classifier',
      ]);
      // The Keras VGG16 conv base: 14,714,688 parameters.
      const base = [...convBaseWeights(built.model).values()].reduce((n, shape) => n + size(shape), 0);
      expect(base).toBe(14_714_688);
      expect(built.model.getLayer('head_pool').outputShape).toEqual([null, 1, 1, 512]);
    });
  });

  it('freezes conv layers from the end as trainableLayers says', () => {
    withModel(createModel('vgg16', { numClasses: 3, trainableLayers: 0, inputSize: [128, 128] }), (built) => {
      expect(trainableLayerNames(built.model)).toEqual(['head_dense', 'head_bn', 'classifier']);
      expect(countParams(built.model).trainable).toBe(2_392_963 - 2_359_808);
      // head_pool and head_flatten have no weights and do not depend on a trainable layer.
      expect(built.backbone!.outputs.map((t) => t.sourceLayer.name)).toEqual(['head_flatten']);
    });
    withModel(createModel('vgg16', { numClasses: 2, trainableLayers: 3, inputSize: [128, 128] }), (built) => {
      expect(trainableLayerNames(built.model).slice(0, 3)).toEqual(['block5_conv1', 'block5_conv2', 'block5_conv3']);
    });
  });
});

describe('vgg16_cam', () => {
  it('pools block5_conv3 directly so that CAM is exact', () => {
    withModel(createModel('vgg16_cam', { numClasses: 4, inputSize: [64, 64] }), (built) => {
      const gapNode = built.model.getLayer('cam_gap').inboundNodes[0]!;
      expect(gapNode.inboundLayers.map((layer) => layer.name)).toEqual(['block5_conv3']);
      expect(trainableLayerNames(built.model)).toEqual(['block5_conv3', 'classifier']);
      expect(built.model.getLayer('classifier').getWeights()[0]!.shape).toEqual([512, 4]);
    });
  });
});

describe('resnet18', () => {
  it('has torchvision\'s 11,176,512 conv-base parameters plus 9,600 BatchNorm statistics', () => {
    withModel(createModel('resnet18', { numClasses: 3 }), (built) => {
      const base = convBaseWeights(built.model);
      const total = [...base.values()].reduce((n, shape) => n + size(shape), 0);
      const statistics = [...base].filter(([name]) => /moving_(mean|variance)$/.test(name));
      const statisticsTotal = statistics.reduce((n, [, shape]) => n + size(shape), 0);
      expect(total - statisticsTotal).toBe(11_176_512);
      expect(statisticsTotal).toBe(9_600);
      // Head: Dense 512→64 and 64→3.
      expect(countParams(built.model)).toEqual({
        trainable: 2_359_296 + 1_024 + 32_832 + 195,
        nonTrainable: 11_186_112 - 2_359_296 - 1_024,
      });
      expect(trainableLayerNames(built.model)).toEqual(['layer4_1_conv2', 'layer4_1_bn2', 'head_dense', 'classifier']);
    });
  });

  it('uses torchvision names and torch padding, and cuts inside the last block', () => {
    withModel(createModel('resnet18', { numClasses: 3 }), (built) => {
      const { model } = built;
      const shapeOf = (name: string): (number | null)[] => model.getLayer(name).outputShape as (number | null)[];
      expect(shapeOf('conv1_pad')).toEqual([null, 230, 230, 3]);
      expect(shapeOf('conv1')).toEqual([null, 112, 112, 64]);
      expect(shapeOf('maxpool')).toEqual([null, 56, 56, 64]);
      expect(shapeOf('layer2_0_conv1_pad')).toEqual([null, 58, 58, 64]);
      expect(shapeOf('layer2_0_conv1')).toEqual([null, 28, 28, 128]);
      expect(model.getLayer('layer2_0_conv1').getConfig()['padding']).toBe('valid');
      expect(model.getLayer('layer4_0_downsample_0').getWeights()[0]!.shape).toEqual([1, 1, 256, 512]);
      expect(shapeOf('layer4_1_relu')).toEqual([null, 7, 7, 512]);
      expect(model.getLayer('bn1').getConfig()).toMatchObject({ epsilon: 1e-5, momentum: 0.9 });
      expect(model.getLayer('conv1').getWeights()).toHaveLength(1); // no bias
      // Cut inside a residual block: conv2 reads relu1, the add reads the block's input.
      expect(built.backbone!.outputs.map((t) => t.sourceLayer.name)).toEqual(['layer4_1_relu1', 'layer4_0_relu']);
      expect(built.head.inputs).toHaveLength(2);
    });
  });
});

/** Reads a safetensors header: 8-byte little-endian length, then JSON. */
function readSafetensorsHeader(file: string): Record<string, { shape: number[] }> {
  const fd = openSync(file, 'r');
  try {
    const lengthBytes = Buffer.alloc(8);
    readSync(fd, lengthBytes, 0, 8, 0);
    const header = Buffer.alloc(Number(lengthBytes.readBigUInt64LE(0)));
    readSync(fd, header, 0, header.length, 8);
    const parsed = JSON.parse(header.toString('utf8')) as Record<string, { shape: number[] }>;
    delete parsed['__metadata__'];
    return parsed;
  } finally {
    closeSync(fd);
  }
}

const MOBILENET_FILE = '/work/shared/weights/mobilenet_v1_1.0_224_imagenet_to_pw12.safetensors';

describe('mobilenet_v1', () => {
  it('ends its conv base with conv_pw_12 at 7×7×1024 and trains the last block', () => {
    withModel(createModel('mobilenet_v1', { numClasses: 3 }), (built) => {
      expect(built.model.getLayer('conv_pw_12_relu').outputShape).toEqual([null, 7, 7, 1024]);
      expect(trainableLayerNames(built.model)).toEqual([
        'conv_dw_12', 'conv_dw_12_bn', 'conv_pw_12', 'conv_pw_12_bn', 'head_dense', 'head_bn', 'classifier',
      ]);
      expect(built.model.getLayer('conv_dw_12_bn').getConfig()['epsilon']).toBe(1e-3);
      expect(built.model.getLayer('conv1_relu').getConfig()['maxValue']).toBe(6);
    });
  });

  itOnRealData(existsSync(MOBILENET_FILE), MOBILENET_FILE, 'matches every tensor name and shape of the shipped weight file', () => {
    const fileTensors = readSafetensorsHeader(MOBILENET_FILE);
    withModel(createModel('mobilenet_v1', { numClasses: 3 }), (built) => {
      const ours = Object.fromEntries(convBaseWeights(built.model));
      const theirs = Object.fromEntries(Object.entries(fileTensors).map(([name, info]) => [name, info.shape]));
      expect(ours).toEqual(theirs);
    });
  });
});

describe('grayscale_cnn', () => {
  it('trains everything, so the head is the whole model', () => {
    withModel(createModel('grayscale_cnn', { numClasses: 3 }), (built) => {
      expect(built.backbone).toBeUndefined();
      expect(built.head).toBe(built.model);
      expect(countParams(built.model).trainable).toBe(built.model.trainableWeights.reduce((n, w) => n + size(w.shape), 0));
      expect(built.model.nonTrainableWeights.every((w) => /moving_(mean|variance)$/.test(w.originalName))).toBe(true);
      expect(built.model.inputs[0]!.shape).toEqual([null, 224, 224, 1]);
    });
  });

  it('survives a JSON round trip of the flat model with its Keras names', async () => {
    const built = createModel('grayscale_cnn', { numClasses: 3, inputSize: [32, 32], trainableLayers: 1 });
    try {
      const topology = built.model.toJSON(null, false);
      if (typeof topology === 'string') throw new Error('toJSON(null, false) returned a string');
      const copy = await tfl.models.modelFromJSON({ modelTopology: topology });
      expect(copy.layers.map((layer) => layer.name)).toEqual(built.model.layers.map((layer) => layer.name));
      copy.setWeights(built.model.getWeights());
      const x = tf.ones([1, 32, 32, 1]);
      const [a, b] = [built.model.predict(x) as tf.Tensor, copy.predict(x) as tf.Tensor];
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      tf.dispose([x, a, b]);
      copy.dispose();
    } finally {
      disposeBuiltModel(built);
    }
  });
});
