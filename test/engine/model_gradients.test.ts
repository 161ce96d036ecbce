// Whole-model gradients on wasm (our kernels + the package's) against the cpu backend and against
// finite differences; and no tensor leak across training steps.
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine, tf } from '../../src/engine/index.js';
import { relativeError } from './reference.js';
import { buildSmallModel, smallBatch, trainingLoss } from './small_model.js';

beforeAll(async () => {
  await initEngine();
});

function gradientsOf(model: tfl.LayersModel, x: tf.Tensor, y: tf.Tensor): Map<string, Float32Array> {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => trainingLoss(model, x, y), vars);
  const out = new Map(Object.entries(grads).map(([name, g]) => [name, g.dataSync() as Float32Array]));
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

describe('whole-model gradients on wasm', () => {
  it('match the cpu backend for every trainable weight', async () => {
    await tf.setBackend('wasm');
    const model = buildSmallModel({ dropout: false });
    const { x, y } = smallBatch(4);
    const onWasm = gradientsOf(model, x, y);
    await tf.setBackend('cpu');
    const onCpu = gradientsOf(model, x, y);
    await tf.setBackend('wasm');
    expect(onWasm.size).toBe(model.trainableWeights.length);
    for (const [name, expected] of onCpu) {
      const actual = onWasm.get(name)!;
      expect(Math.max(...expected.map(Math.abs)), `${name} gets a gradient`).toBeGreaterThan(0);
      expect(relativeError(actual, expected), name).toBeLessThanOrEqual(1e-4);
    }
    tf.dispose([x, y]);
    model.dispose();
  });

  it('agree with finite differences on the largest-gradient weight of each conv kernel', async () => {
    await tf.setBackend('wasm');
    const model = buildSmallModel({ dropout: false });
    const { x, y } = smallBatch(4);
    const grads = gradientsOf(model, x, y);
    const lossNow = (): number => tf.tidy(() => trainingLoss(model, x, y).dataSync()[0]!);
    const kernels = model.trainableWeights.filter((w) => /conv2d.*kernel|depthwise_kernel/.test(w.name));
    expect(kernels.length).toBe(4);
    const eps = 1e-2;
    for (const weight of kernels) {
      const g = grads.get((weight.read() as tf.Variable).name)!;
      const at = g.reduce((best, v, i) => (Math.abs(v) > Math.abs(g[best]!) ? i : best), 0);
      const original = weight.read().dataSync().slice() as Float32Array;
      const shifted = (delta: number): number => {
        const values = original.slice();
        values[at] = values[at]! + delta;
        weight.write(tf.tensor(values, weight.shape as number[]));
        return lossNow();
      };
      const numeric = (shifted(eps) - shifted(-eps)) / (2 * eps);
      weight.write(tf.tensor(original, weight.shape as number[]));
      expect(Math.abs(numeric - g[at]!), weight.name).toBeLessThanOrEqual(0.05 * Math.abs(g[at]!) + 1e-3);
    }
    tf.dispose([x, y]);
    model.dispose();
  });
});

describe('training on wasm', () => {
  it('keeps the tensor count unchanged across optimizer steps', async () => {
    await tf.setBackend('wasm');
    const model = buildSmallModel({ dropout: true });
    const { x, y } = smallBatch(4);
    const optimizer = tf.train.adam(1e-3);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const step = (): number => {
      const cost = optimizer.minimize(() => trainingLoss(model, x, y), true, vars)!;
      const value = cost.dataSync()[0]!;
      cost.dispose();
      return value;
    };
    const first = step(); // creates the optimizer's slots
    const tensors = tf.memory().numTensors;
    step();
    step();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(Number.isFinite(first)).toBe(true);
    optimizer.dispose();
    tf.dispose([x, y]);
    model.dispose();
  });
});
