// Shared by the ONNX tests: seeded inputs, BatchNorm statistics that make folding matter, and
// output comparison.
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../../src/engine/index.js';
import { createRng, type Rng } from '../../src/util/rng.js';

type Layer = tfl.LayersModel['layers'][number];

export function randomInput(rng: Rng, n: number, shape: readonly number[]): Float32Array {
  const data = new Float32Array(n * shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  return data;
}

function setWeight(layer: Layer, shortName: string, values: Float32Array): void {
  const variable = layer.weights.find((w) => w.originalName.endsWith(`/${shortName}`));
  if (!variable) return;
  variable.write(tf.tensor(values, variable.shape as number[]));
}

/**
 * Gives every BatchNorm of `model` statistics near the real ones of its input on `x` (so the
 * network stays well-scaled, as a trained one is) but off by random amounts, plus random gamma and
 * beta, so that folding a BatchNorm into a conv changes the weights substantially. Layers are
 * visited in graph order so each one sees the already-recalibrated layers before it.
 */
export function randomizeBatchNorms(model: tfl.LayersModel, x: Float32Array, n: number, seed: number): number {
  const rng = createRng(seed);
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  let count = 0;
  const depths = Object.keys(model.nodesByDepth).map(Number).sort((a, b) => b - a);
  for (const depth of depths) {
    for (const node of model.nodesByDepth[String(depth)]!) {
      const layer = node.outboundLayer;
      if (layer.getClassName() !== 'BatchNormalization') continue;
      const probe = tfl.model({ inputs: model.inputs, outputs: node.inputTensors[0]! });
      const [mean, variance] = tf.tidy(() => {
        const activations = probe.predict(tf.tensor(x, [n, ...inputShape])) as tf.Tensor;
        const axes = activations.shape.map((_, i) => i).slice(0, -1);
        const moments = tf.moments(activations, axes);
        return [moments.mean.dataSync() as Float32Array, moments.variance.dataSync() as Float32Array];
      });
      const channels = mean!.length;
      const gamma = new Float32Array(channels);
      const beta = new Float32Array(channels);
      const movingMean = new Float32Array(channels);
      const movingVariance = new Float32Array(channels);
      for (let c = 0; c < channels; c++) {
        const std = Math.sqrt(variance![c]!) + 1e-3;
        movingMean[c] = mean![c]! + 0.2 * std * rng.normal();
        movingVariance[c] = (variance![c]! + 1e-3) * rng.uniform(0.6, 1.4);
        gamma[c] = rng.uniform(0.5, 1.5);
        beta[c] = rng.uniform(-0.5, 0.5);
      }
      tf.tidy(() => {
        setWeight(layer, 'gamma', gamma);
        setWeight(layer, 'beta', beta);
        setWeight(layer, 'moving_mean', movingMean);
        setWeight(layer, 'moving_variance', movingVariance);
      });
      count++;
    }
  }
  return count;
}

/** max |a - b|. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

export function maxAbs(a: Float32Array): number {
  let worst = 0;
  for (const v of a) worst = Math.max(worst, Math.abs(v));
  return worst;
}

/** Standard deviation of the values: a degenerate (constant) output would make a comparison meaningless. */
export function spread(a: Float32Array): number {
  let mean = 0;
  for (const v of a) mean += v / a.length;
  let sum = 0;
  for (const v of a) sum += (v - mean) ** 2;
  return Math.sqrt(sum / a.length);
}
