// The zoo's models accept files in the layouts their weight sources name: a Keras 1 HDF5 file for
// vgg16 (as vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5), a torchvision state_dict for resnet18,
// written here from the models' own weight shapes with values that expose any layout mistake.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../../src/engine/index.js';
import { createModel, disposeBuiltModel } from '../../../src/models/index.js';
import { loadPretrained, modelWeightsByName, readModelWeights } from '../../../src/models/weights/load.js';
import { writeSafetensors } from '../../../src/models/weights/safetensors.js';
import { transposeTensor, type NamedTensor, type TensorMap } from '../../../src/models/weights/tensors.js';
import { seededValues, writeKerasH5, type H5Layer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'pocovid-zoo-'));
beforeAll(async () => {
  await initEngine();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const isHead = (name: string) => name.startsWith('head_') || name.startsWith('classifier/');

/** Index of the first differing value (-1 when equal); vitest's deep equality is far too slow for millions of floats. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

function valuesFor(shape: number[], seed: number): NamedTensor {
  return { shape, data: seededValues(shape.reduce((a, b) => a * b, 1), seed) };
}

describe('zoo models load their pretrained layouts strictly', () => {
  it('vgg16 from a Keras 1 HDF5 notop file and from a timm/torchvision state_dict', async () => {
    const built = createModel('vgg16', { numClasses: 3, inputSize: [128, 128] });
    const expected: TensorMap = new Map();
    const layers: H5Layer[] = [{ name: 'input_1', weights: [] }];
    let seed = 1;
    for (const [name, variable] of modelWeightsByName(built.model)) {
      if (isHead(name)) continue;
      const [layer, weight] = name.split('/') as [string, string];
      const tensor = valuesFor(variable.shape as number[], seed++);
      expected.set(name, tensor);
      if (layers.at(-1)!.name !== layer) layers.push({ name: layer, weights: [] });
      layers.at(-1)!.weights.push([`${layer}_${weight === 'kernel' ? 'W' : 'b'}_1:0`, tensor]);
    }
    expect(layers.length).toBe(14); // input_1 + 13 convolutions
    const file = join(dir, 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5');
    await writeKerasH5(file, layers);

    const report = await loadPretrained(built, file);
    expect(report.loaded).toHaveLength(26);
    const loaded = readModelWeights(built.model);
    for (const [name, tensor] of expected) expect(firstDifference(loaded.get(name)!.data, tensor.data), name).toBe(-1);

    // timm's vgg16.tv_in1k layout: features.N in OIHW, its classifier (pre_logits.*, head.fc.*) dropped by
    // the WeightSource, so small stand-ins suffice. Negated values, so that a no-op load would be noticed.
    const negated = new Map([...expected].map(([name, t]) => [name, { shape: t.shape, data: t.data.map((v) => -v) }]));
    const featureIndex = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
    const timm: TensorMap = new Map();
    layers.slice(1).forEach(({ name }, i) => {
      timm.set(`features.${featureIndex[i]}.weight`, transposeTensor(negated.get(`${name}/kernel`)!, [3, 2, 0, 1]));
      timm.set(`features.${featureIndex[i]}.bias`, negated.get(`${name}/bias`)!);
    });
    for (const name of ['pre_logits.fc1.weight', 'pre_logits.fc1.bias', 'pre_logits.fc2.weight', 'pre_logits.fc2.bias', 'head.fc.weight', 'head.fc.bias']) {
      timm.set(name, valuesFor([2], seed++));
    }
    const timmFile = join(dir, 'vgg16.tv_in1k.safetensors');
    await writeSafetensors(timmFile, timm);
    const timmReport = await loadPretrained(built, timmFile);
    expect(timmReport.loaded).toHaveLength(26);
    expect(timmReport.dropped).toHaveLength(6);
    const timmLoaded = readModelWeights(built.model);
    for (const [name, tensor] of negated) expect(firstDifference(timmLoaded.get(name)!.data, tensor.data), name).toBe(-1);
    disposeBuiltModel(built);
  });

  it('resnet18 from a torchvision state_dict (OIHW, BN running stats, num_batches_tracked, fc)', async () => {
    const built = createModel('resnet18', { numClasses: 3, inputSize: [32, 32] });
    const stateDict: TensorMap = new Map();
    const expected: TensorMap = new Map();
    const bnParams: Record<string, string> = { gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var' };
    let seed = 1;
    for (const [name, variable] of modelWeightsByName(built.model)) {
      if (isHead(name)) continue;
      const [layer, weight] = name.split('/') as [string, string];
      const module = layer.replace(/^layer(\d)_(\d)_/, 'layer$1.$2.').replace(/downsample_(\d)$/, 'downsample.$1');
      const ours = valuesFor(variable.shape as number[], seed++);
      if (weight === 'moving_variance') ours.data.forEach((v, i) => (ours.data[i] = Math.abs(v) + 0.1));
      expected.set(name, ours);
      if (weight === 'kernel') {
        stateDict.set(`${module}.weight`, transposeTensor(ours, [3, 2, 0, 1])); // HWIO → OIHW
      } else {
        stateDict.set(`${module}.${bnParams[weight]!}`, ours);
        if (weight === 'gamma') stateDict.set(`${module}.num_batches_tracked`, { shape: [], data: Float32Array.of(100) });
      }
    }
    expect(stateDict.has('layer4.1.conv2.weight')).toBe(true);
    expect(stateDict.has('layer2.0.downsample.0.weight')).toBe(true);
    expect(stateDict.has('layer2.0.downsample.1.running_var')).toBe(true);
    stateDict.set('fc.weight', valuesFor([1000, 512], seed++));
    stateDict.set('fc.bias', valuesFor([1000], seed++));
    const file = join(dir, 'resnet18.tv_in1k.safetensors');
    await writeSafetensors(file, stateDict);

    const report = await loadPretrained(built, file);
    expect(report.loaded).toHaveLength(expected.size);
    expect(report.dropped).toContain('fc.weight');
    const loaded = readModelWeights(built.model);
    for (const [name, tensor] of expected) expect(firstDifference(loaded.get(name)!.data, tensor.data), name).toBe(-1);
    disposeBuiltModel(built);
  });
});
