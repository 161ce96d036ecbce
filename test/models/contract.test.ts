// Contract tests over every registered model (timm tests/test_models.py style), on small inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine, tf } from '../../src/engine/index.js';
import { UnknownChoiceError } from '../../src/errors.js';
import { countParams, createModel, disposeBuiltModel, layerOutput, listModels, type BuiltModel } from '../../src/models/index.js';
import { oneHotLabels, randomBatch, smallInputSize } from './helpers.js';

await initEngine();

const BATCH = 2;

function asArray<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}

function snapshot(model: tfl.LayersModel): Map<string, Float32Array> {
  const values = new Map<string, Float32Array>();
  for (const layer of model.layers) {
    for (const weight of layer.weights) values.set(weight.originalName, weight.read().dataSync() as Float32Array);
  }
  return values;
}

describe.each(listModels().map((spec) => spec.name))('%s', (name) => {
  const inputSize = smallInputSize(name);
  let built: BuiltModel;
  let x: tf.Tensor4D;
  let tensorsBefore: number;

  beforeAll(() => {
    tensorsBefore = tf.memory().numTensors;
    built = createModel(name, { numClasses: 3, inputSize, seed: 1 });
    x = randomBatch(BATCH, inputSize, built.cfg.channels, 2);
  });

  afterAll(() => {
    x.dispose();
    disposeBuiltModel(built);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('reflects the options in its config and input shape', () => {
    expect(built.name).toBe(name);
    expect(built.cfg.inputSize).toEqual(inputSize);
    expect(built.model.inputs[0]!.shape).toEqual([null, ...inputSize, built.cfg.channels]);
    expect(built.cfg.mean).toHaveLength(built.cfg.channels);
    expect(built.cfg.std).toHaveLength(built.cfg.channels);
    for (const layerName of [built.cfg.camLayer, built.cfg.featureLayer, built.cfg.classifier]) {
      expect(() => built.model.getLayer(layerName)).not.toThrow();
    }
    expect(built.model.getLayer(built.cfg.classifier).getConfig()['activation']).toBe('softmax');
    // Grad-CAM needs the cam layer's output and the probabilities from one graph.
    const camModel = tfl.model({ inputs: built.model.inputs, outputs: [layerOutput(built.model, built.cfg.camLayer), built.model.outputs[0]!] });
    expect(camModel.outputs[0]!.shape.length).toBe(4);
  });

  it.each([2, 3, 4])('outputs probabilities for %i classes', (numClasses) => {
    const before = tf.memory().numTensors;
    const model = numClasses === 3 ? built : createModel(name, { numClasses, inputSize, seed: 1 });
    const probs = model.model.predict(x) as tf.Tensor;
    expect(probs.shape).toEqual([BATCH, numClasses]);
    const rows = probs.arraySync() as number[][];
    for (const row of rows) {
      expect(row.every(Number.isFinite)).toBe(true);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    // Different inputs give different outputs: the signal survives the random initialisation.
    expect(rows[0]).not.toEqual(rows[1]);
    probs.dispose();
    if (model !== built) disposeBuiltModel(model);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('equals head(backbone(x)) and shares its weights', () => {
    const before = tf.memory().numTensors;
    const whole = built.model.predict(x) as tf.Tensor;
    const features = built.backbone ? built.backbone.predict(x) : x;
    const viaCut = built.head.predict(features) as tf.Tensor;
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(whole, viaCut))).dataSync()[0])).toBeLessThan(1e-5);
    if (built.backbone) {
      expect(built.backbone.trainableWeights).toHaveLength(0);
      for (const tensor of asArray(features)) tensor.dispose();
      // Every trainable variable of the flat model is in the head, as the same variable.
      const headVariables = new Set(built.head.trainableWeights.map((w) => w.read()));
      expect(built.model.trainableWeights.every((w) => headVariables.has(w.read()))).toBe(true);
      expect(built.head.trainableWeights).toHaveLength(built.model.trainableWeights.length);
    } else {
      expect(built.head).toBe(built.model);
    }
    tf.dispose([whole, viaCut]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives every trainable weight a non-zero gradient through the head', () => {
    const before = tf.memory().numTensors;
    const features = built.backbone ? asArray(built.backbone.predict(x)) : [x];
    const labels = oneHotLabels(BATCH, 3);
    const variables = built.head.trainableWeights.map((w) => w.read() as tf.Variable);
    // Inference mode: with training on, BatchNorm cancels head_dense's bias exactly (its
    // gradient is 0 by design), and Dropout would zero random units.
    const { value, grads } = tf.variableGrads(() => {
      const probs = built.head.apply(features.length === 1 ? features[0]! : features, { training: false }) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(labels, tf.log(tf.clipByValue(probs, 1e-7, 1))) as tf.Scalar;
    }, variables);
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    const empty = variables.filter((v) => {
      const g = grads[v.name]!;
      const maxAbs = tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]!);
      return !(maxAbs > 0 && Number.isFinite(maxAbs));
    });
    expect(empty.map((v) => v.name)).toEqual([]);
    tf.dispose([value, labels, ...Object.values(grads)]);
    if (built.backbone) tf.dispose(features);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('keeps frozen weights unchanged through an optimizer step on the whole model', async () => {
    const frozenLayers = built.model.layers.filter((layer) => !layer.trainable && layer.weights.length > 0);
    const weightsBefore = snapshot(built.model);
    const tensorsBeforeStep = tf.memory().numTensors;
    // Every label in class 0: the classifier bias's gradient, mean(p) − (1, 0, 0), is never zero
    // while p is not saturated. A randomly initialised ResNet with frozen (inference-mode)
    // BatchNorm amplifies its input block after block until the softmax saturates, and Keras'
    // clipped cross-entropy then has no gradient at all; the network is positively homogeneous
    // (ReLU, bias-free convs, BatchNorm with zero mean/offset), so a small input keeps it out of
    // saturation without changing what the step must show.
    const labels = tf.tidy(() => tf.oneHot(tf.zeros([BATCH], 'int32') as tf.Tensor1D, 3) as tf.Tensor2D);
    const small = tf.mul(x, 0.01) as tf.Tensor4D;
    built.model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
    await built.model.trainOnBatch(small, labels);
    tf.dispose([labels, small]);
    built.model.optimizer.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBeforeStep);
    const after = snapshot(built.model);
    // Plain loops: vitest's deep equality takes minutes on millions of floats.
    const changed = (name: string): boolean => {
      const [a, b] = [weightsBefore.get(name)!, after.get(name)!];
      return a.length !== b.length || a.some((value, i) => value !== b[i]);
    };
    const frozenNames = frozenLayers.flatMap((layer) => layer.weights.map((w) => w.originalName));
    expect(frozenNames.filter(changed)).toEqual([]);
    // The classifier's bias always gets a gradient with these labels; its kernel may not in one
    // step when Dropout (unseeded by design) zeroes every active unit of a small batch.
    expect(changed(`${built.cfg.classifier}/bias`)).toBe(true);
  });
});

describe('registry', () => {
  it('lists every backbone', () => {
    expect(listModels().map((spec) => spec.name)).toEqual(['grayscale_cnn', 'mobilenet_v1', 'resnet18', 'vgg16', 'vgg16_cam']);
  });

  it('names the valid models when the name is unknown', () => {
    expect(() => createModel('vgg17', { numClasses: 3 })).toThrow(UnknownChoiceError);
    expect(() => createModel('vgg17', { numClasses: 3 })).toThrow(
      'unknown model "vgg17"; valid: grayscale_cnn, mobilenet_v1, resnet18, vgg16, vgg16_cam',
    );
  });

  it('rejects bad options with the bad value, leaking nothing', () => {
    const before = tf.memory().numTensors;
    expect(() => createModel('grayscale_cnn', { numClasses: 1 })).toThrow('numClasses must be an integer >= 2, got 1');
    expect(() => createModel('grayscale_cnn', { numClasses: 3, dropout: 1 })).toThrow('dropout must be in [0, 1), got 1');
    expect(() => createModel('vgg16', { numClasses: 3, inputSize: [64, 64] })).toThrow('vgg16 needs an input of at least 128×128, got 64×64');
    expect(() => createModel('grayscale_cnn', { numClasses: 3, inputSize: [32, 32], trainableLayers: 5 })).toThrow(
      'trainableLayers 5 exceeds the 4 conv layers of model "grayscale_cnn"',
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('builds the same weights from the same seed and different ones from another', () => {
    const weightsOf = (seed: number): Float32Array[] => {
      const built = createModel('grayscale_cnn', { numClasses: 3, inputSize: [32, 32], seed });
      const values = built.model.getWeights().map((w) => w.dataSync() as Float32Array);
      disposeBuiltModel(built);
      return values;
    };
    const a = weightsOf(7);
    expect(weightsOf(7)).toEqual(a);
    expect(weightsOf(8)[0]).not.toEqual(a[0]);
  });

  it('has no trainable backbone weights whatever trainableLayers is', () => {
    const built = createModel('grayscale_cnn', { numClasses: 3, inputSize: [32, 32], trainableLayers: 1 });
    expect(built.backbone).toBeDefined();
    expect(built.backbone!.outputs.map((t) => t.sourceLayer.name)).toEqual(['block3_pool']);
    expect(countParams(built.backbone!).trainable).toBe(0);
    expect(countParams(built.head).trainable).toBe(countParams(built.model).trainable);
    disposeBuiltModel(built);
  });
});
