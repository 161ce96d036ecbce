import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine, tf } from '../../../src/engine/index.js';
import { WeightMismatchError } from '../../../src/errors.js';
import { readKerasH5 } from '../../../src/models/weights/keras_h5.js';
import {
  loadModelWeightsFile,
  loadPretrained,
  loadWeightsIntoModel,
  modelWeightsByName,
  readModelWeights,
  saveModelWeights,
} from '../../../src/models/weights/load.js';
import { writeSafetensors } from '../../../src/models/weights/safetensors.js';
import type { NamedTensor, TensorMap } from '../../../src/models/weights/tensors.js';
import type { BuiltModel, WeightSource } from '../../../src/models/types.js';
import { convBn, referenceBatchNorm, referenceConv, relu, seededValues, tensorOf, writeKerasH5 } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'pocovid-load-'));
beforeAll(async () => {
  await initEngine();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A BuiltModel around a hand-made functional model: backbone up to `backboneLayer`, the rest is the head. */
function built(name: string, model: tfl.LayersModel, backboneLayer: string, sources: WeightSource[] = []): BuiltModel {
  const backbone = tfl.model({ inputs: model.inputs, outputs: model.getLayer(backboneLayer).output as tfl.SymbolicTensor });
  return {
    name,
    cfg: {
      id: `${name}.test`, inputSize: [model.inputs[0]!.shape[1]!, model.inputs[0]!.shape[2]!], channels: 3, channelOrder: 'rgb',
      mean: [0, 0, 0], std: [1, 1, 1], camLayer: backboneLayer, classifier: 'classifier', featureLayer: backboneLayer, sources,
    },
    numClasses: 3,
    trainableLayers: 0,
    model,
    backbone,
    head: model,
  };
}

/** input [3,3,2] → block1_conv1 (2 filters, 3×3 valid) → flatten → head_dense → classifier. */
function tinyVggLike(): tfl.LayersModel {
  const input = tfl.input({ shape: [3, 3, 2], name: 'input_1' });
  let x = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'valid', name: 'block1_conv1' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
  const h = tfl.layers.dense({ units: 4, name: 'head_dense', activation: 'relu' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, name: 'classifier', activation: 'softmax' }).apply(h) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'tiny_vgg' });
}

async function predict(model: tfl.LayersModel, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const input = tf.tensor(x, [1, ...shape]);
  const out = model.predict(input) as tf.Tensor;
  const values = (await out.data()) as Float32Array;
  tf.dispose([input, out]);
  return values;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThan(tol);
}

describe('Keras HDF5 weights', () => {
  const kernel = tensorOf([3, 3, 2, 2], 11); // HWIO
  const bias = { shape: [2], data: Float32Array.from([0.5, -0.25]) };
  const x = seededValues(18, 5);
  // Hand computation: a 3×3 valid conv over a 3×3 input is one dot product per filter.
  const expected = [0, 1].map((o) => {
    let sum = bias.data[o]!;
    for (let k = 0; k < 18; k++) sum += x[k]! * kernel.data[k * 2 + o]!;
    return sum;
  });

  it('reads Keras 1 names (block1_conv1_W_1:0), skips weightless layers, and loads strictly', async () => {
    const file = join(dir, 'keras1_notop.h5');
    await writeKerasH5(file, [
      { name: 'input_1', weights: [] },
      { name: 'block1_conv1', weights: [['block1_conv1_W_1:0', kernel], ['block1_conv1_b_1:0', bias]] },
      { name: 'flatten', weights: [] },
    ]);
    const tensors = await readKerasH5(file);
    expect([...tensors.keys()]).toEqual(['block1_conv1/kernel', 'block1_conv1/bias']);
    expect(tensors.get('block1_conv1/kernel')!.shape).toEqual([3, 3, 2, 2]);
    expect(Array.from(tensors.get('block1_conv1/kernel')!.data)).toEqual(Array.from(kernel.data));

    const b = built('tiny_vgg', tinyVggLike(), 'block1_conv1');
    const report = await loadPretrained(b, file);
    expect(report.loaded.sort()).toEqual(['block1_conv1/bias', 'block1_conv1/kernel']);
    expect(report.unset.sort()).toEqual(['classifier/bias', 'classifier/kernel', 'head_dense/bias', 'head_dense/kernel']);
    expectClose(await predict(b.backbone!, x, [3, 3, 2]), expected);
    b.model.dispose();
  });

  it('reads Keras 2 names (block1_conv1/kernel:0 in a nested group) of a whole model saved under /model_weights', async () => {
    const file = join(dir, 'keras2.h5');
    await writeKerasH5(file, [
      { name: 'block1_conv1', weights: [['block1_conv1/kernel:0', kernel], ['block1_conv1/bias:0', bias]] },
    ], { underModelWeights: true });
    const b = built('tiny_vgg', tinyVggLike(), 'block1_conv1');
    await loadPretrained(b, file, 'keras-h5');
    expectClose(await predict(b.backbone!, x, [3, 3, 2]), expected);
    await expect(loadPretrained(b, file, 'keras-safetensors')).rejects.toThrow(/expected keras-safetensors but the file is HDF5/);
    b.model.dispose();
  });

  it('reads layer_names split into layer_names0, layer_names1 (large models)', async () => {
    const file = join(dir, 'split.h5');
    await writeKerasH5(file, [
      { name: 'block1_conv1', weights: [['block1_conv1/kernel:0', kernel], ['block1_conv1/bias:0', bias]] },
      { name: 'block1_conv2', weights: [['block1_conv2/kernel:0', kernel]] },
      { name: 'block1_pool', weights: [] },
    ], { splitLayerNames: true });
    expect([...(await readKerasH5(file)).keys()]).toEqual(['block1_conv1/kernel', 'block1_conv1/bias', 'block1_conv2/kernel']);
  });

  it('rejects an HDF5 file that is not a Keras weight file, naming it', async () => {
    const h5wasm = (await import('h5wasm/node')).default;
    await h5wasm.ready;
    const file = join(dir, 'plain.h5');
    const h5 = new h5wasm.File(file, 'w');
    h5.create_dataset({ name: 'x', data: Float32Array.from([1]) });
    h5.close();
    await expect(readKerasH5(file)).rejects.toThrow(`${file}: not a Keras weight file: no "layer_names" attribute`);
  });
});

describe('torchvision-layout weights', () => {
  // A ResNet-18-like stem and downsampling block with torchvision names:
  // conv1/bn1/relu → layer2_0: conv1(3×3, s2)+bn1+relu → conv2(3×3)+bn2, plus downsample (1×1 s2 conv + BN); add; relu.
  function resnetLike(): tfl.LayersModel {
    const input = tfl.input({ shape: [6, 6, 2] });
    const stem = tfl.layers.reLU({ name: 'relu' }).apply(convBn(input, 'conv1', 'bn1', 3, 3, 1, 1)) as tfl.SymbolicTensor;
    let main = tfl.layers.reLU({ name: 'layer2_0_relu1' }).apply(convBn(stem, 'layer2_0_conv1', 'layer2_0_bn1', 4, 3, 2, 1)) as tfl.SymbolicTensor;
    main = convBn(main, 'layer2_0_conv2', 'layer2_0_bn2', 4, 3, 1, 1);
    const shortcut = convBn(stem, 'layer2_0_downsample_0', 'layer2_0_downsample_1', 4, 1, 2, 0);
    const sum = tfl.layers.add({ name: 'layer2_0_add' }).apply([main, shortcut]) as tfl.SymbolicTensor;
    const features = tfl.layers.reLU({ name: 'layer2_0_out' }).apply(sum) as tfl.SymbolicTensor;
    const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(features) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'classifier' }).apply(pooled) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: out, name: 'tiny_resnet' });
  }

  function stateDict(): TensorMap {
    const sd: TensorMap = new Map();
    let seed = 100;
    const conv = (name: string, o: number, i: number, k: number) => sd.set(`${name}.weight`, tensorOf([o, i, k, k], seed++));
    const bn = (name: string, c: number) => {
      sd.set(`${name}.weight`, tensorOf([c], seed++, 1));
      sd.set(`${name}.bias`, tensorOf([c], seed++));
      sd.set(`${name}.running_mean`, tensorOf([c], seed++));
      sd.set(`${name}.running_var`, { shape: [c], data: seededValues(c, seed++).map((v) => 0.5 + Math.abs(v)) });
      sd.set(`${name}.num_batches_tracked`, { shape: [], data: Float32Array.from([1234]) });
    };
    conv('conv1', 3, 2, 3); bn('bn1', 3);
    conv('layer2.0.conv1', 4, 3, 3); bn('layer2.0.bn1', 4);
    conv('layer2.0.conv2', 4, 4, 3); bn('layer2.0.bn2', 4);
    conv('layer2.0.downsample.0', 4, 3, 1); bn('layer2.0.downsample.1', 4);
    sd.set('fc.weight', tensorOf([1000, 4], seed++));
    sd.set('fc.bias', tensorOf([1000], seed++));
    // timm names its classifier head.fc: not dropped by rule, only by the WeightSource's `dropped`.
    sd.set('head.fc.weight', tensorOf([5, 4], seed++));
    sd.set('head.fc.bias', tensorOf([5], seed++));
    return sd;
  }

  function reference(sd: TensorMap, x: Float32Array): Float32Array {
    const t = (n: string) => sd.get(n)!;
    const bnOf = (n: string) => ({ weight: t(`${n}.weight`).data, bias: t(`${n}.bias`).data, mean: t(`${n}.running_mean`).data, variance: t(`${n}.running_var`).data });
    const cbn = (input: Float32Array, shape: [number, number, number], conv: string, bn: string, stride: number, pad: number) => {
      const c = referenceConv(input, shape, t(`${conv}.weight`), stride, pad);
      return { data: referenceBatchNorm(c.data, c.shape[2], bnOf(bn), 1e-5), shape: c.shape };
    };
    const stem = cbn(x, [6, 6, 2], 'conv1', 'bn1', 1, 1);
    const stemOut = relu(stem.data);
    const a = cbn(stemOut, stem.shape, 'layer2.0.conv1', 'layer2.0.bn1', 2, 1);
    const b = cbn(relu(a.data), a.shape, 'layer2.0.conv2', 'layer2.0.bn2', 1, 1);
    const s = cbn(stemOut, stem.shape, 'layer2.0.downsample.0', 'layer2.0.downsample.1', 2, 0);
    return relu(b.data.map((v, i) => v + s.data[i]!));
  }

  it('converts OIHW / BN names, drops fc and num_batches_tracked, and matches an independent computation', async () => {
    const sd = stateDict();
    const file = join(dir, 'resnet_like.safetensors');
    await writeSafetensors(file, sd, { source: 'test' });
    const withoutSource = built('tiny_resnet', resnetLike(), 'layer2_0_out');
    await expect(loadPretrained(withoutSource, file)).rejects.toThrow(/2 file tensor\(s\) match no model weight: head_fc\/kernel, head_fc\/bias/);
    withoutSource.model.dispose();

    const b = built('tiny_resnet', resnetLike(), 'layer2_0_out', [
      { url: '', sha256: '', fileName: 'resnet_like.safetensors', licence: 'test', format: 'torchvision-safetensors', dropped: ['head.fc.*'] },
    ]);
    const before = tf.memory().numTensors;
    const report = await loadPretrained(b, file);
    expect(tf.memory().numTensors).toBe(before);
    expect(report.dropped.sort()).toEqual(
      ['bn1', 'layer2.0.bn1', 'layer2.0.bn2', 'layer2.0.downsample.1'].map((n) => `${n}.num_batches_tracked`)
        .concat(['fc.bias', 'fc.weight', 'head.fc.bias', 'head.fc.weight']).sort(),
    );
    expect(report.unset.sort()).toEqual(['classifier/bias', 'classifier/kernel']);
    expect(report.loaded).toContain('layer2_0_downsample_0/kernel');
    expect(report.loaded).toContain('layer2_0_bn2/moving_variance');
    const x = seededValues(6 * 6 * 2, 77);
    const expected = reference(sd, x);
    expect(expected.length).toBe(3 * 3 * 4);
    expect(expected.filter((v) => v > 0.05).length).toBeGreaterThan(8); // not a trivially zero output
    expectClose(await predict(b.backbone!, x, [6, 6, 2]), expected);
    b.model.dispose();
  });
});

describe('strict loading', () => {
  function twoConvs(): tfl.LayersModel {
    const input = tfl.input({ shape: [4, 4, 2] });
    const a = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c1' }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 2, kernelSize: 1, name: 'c2' }).apply(a) as tfl.SymbolicTensor;
    const h = tfl.layers.dense({ units: 2, name: 'head_dense' }).apply(b) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: h, name: 'two_convs' });
  }

  it('lists every unmatched tensor, shape mismatch and unset weight, and changes nothing', () => {
    const model = twoConvs();
    const before = readModelWeights(model);
    const tensors: TensorMap = new Map<string, NamedTensor>([
      ['c1/kernel', tensorOf([3, 3, 2, 5], 1)],
      ['c1/bias', tensorOf([4], 2)],
      ['extra/kernel', tensorOf([2], 3)],
      ['predictions/kernel', tensorOf([2, 2], 4)],
      ['c2/kernel', tensorOf([1, 1, 4, 2], 5)],
    ]);
    let error: unknown;
    try {
      loadWeightsIntoModel(model, tensors, { source: 'bad.safetensors' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(WeightMismatchError);
    const message = (error as Error).message;
    expect(message).toContain('bad.safetensors: weights do not fit model "two_convs"');
    expect(message).toContain('2 file tensor(s) match no model weight: extra/kernel, predictions/kernel');
    expect(message).toContain('1 shape mismatch(es): c1/kernel: file [3, 3, 2, 5], model [3, 3, 2, 4]');
    expect(message).toContain('4 model weight(s) not in the file: c1/kernel, c2/bias, head_dense/kernel, head_dense/bias');
    // Nothing was written although c1/bias and c2/kernel fitted.
    for (const [name, t] of readModelWeights(model)) expect(Array.from(t.data)).toEqual(Array.from(before.get(name)!.data));
    model.dispose();
  });

  it('accepts dropped tensors (exact or prefix*) and unset layers by prefix, without leaking tensors', () => {
    const model = twoConvs();
    const tensors: TensorMap = new Map<string, NamedTensor>([
      ['c1/kernel', tensorOf([3, 3, 2, 4], 1)],
      ['c1/bias', tensorOf([4], 2)],
      ['c2/kernel', tensorOf([1, 1, 4, 2], 5)],
      ['c2/bias', tensorOf([2], 6)],
      ['predictions/kernel', tensorOf([2, 2], 4)],
      ['aux_logits.fc/kernel', tensorOf([3], 4)],
      ['aux_logits.fc/bias', tensorOf([3], 4)],
    ]);
    const before = tf.memory().numTensors;
    const report = loadWeightsIntoModel(model, tensors, {
      source: 'ok.safetensors', allowUnset: ['head_'], dropped: ['predictions/kernel', 'aux_logits.*'],
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(report.dropped).toEqual(['predictions/kernel', 'aux_logits.fc/kernel', 'aux_logits.fc/bias']);
    expect(report.unset).toEqual(['head_dense/kernel', 'head_dense/bias']);
    expect(Array.from(readModelWeights(model).get('c2/bias')!.data)).toEqual(Array.from(tensors.get('c2/bias')!.data));
    // Names are ours even though TF.js made the variables unique per process (e.g. "c1/kernel_3").
    expect([...modelWeightsByName(model).keys()]).toEqual(['c1/kernel', 'c1/bias', 'c2/kernel', 'c2/bias', 'head_dense/kernel', 'head_dense/bias']);
    model.dispose();
  });

  it('saves a whole model and loads it back strictly into a fresh one; refuses another model\'s file', async () => {
    const file = join(dir, 'trained.safetensors');
    const a = built('tiny_vgg', tinyVggLike(), 'block1_conv1');
    await saveModelWeights(a, file, { fold: '2' });
    const b = built('tiny_vgg', tinyVggLike(), 'block1_conv1');
    const x = seededValues(18, 9);
    expect(Array.from(await predict(b.model, x, [3, 3, 2]))).not.toEqual(Array.from(await predict(a.model, x, [3, 3, 2])));
    const metadata = await loadModelWeightsFile(b, file);
    expect(metadata).toMatchObject({ fold: '2', pocovid_model: 'tiny_vgg' });
    expect(Array.from(await predict(b.model, x, [3, 3, 2]))).toEqual(Array.from(await predict(a.model, x, [3, 3, 2])));

    const other = { ...b, name: 'resnet18' };
    await expect(loadModelWeightsFile(other, file)).rejects.toThrow(`${file}: holds weights of model "tiny_vgg", not "resnet18"`);
    a.model.dispose();
    b.model.dispose();
  });

  it('refuses a file whose head does not fit (wrong number of classes), naming the shapes', async () => {
    const file = join(dir, 'four_classes.safetensors');
    const model = tinyVggLike();
    const weights = readModelWeights(model);
    weights.set('classifier/kernel', tensorOf([4, 4], 1));
    weights.set('classifier/bias', tensorOf([4], 1));
    await writeSafetensors(file, weights);
    const b = built('tiny_vgg', model, 'block1_conv1');
    await expect(loadModelWeightsFile(b, file)).rejects.toThrow(/classifier\/kernel: file \[4, 4\], model \[4, 3\]; classifier\/bias: file \[4\], model \[3\]/);
    model.dispose();
  });
});
