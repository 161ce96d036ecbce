// Penultimate features of frames (cfg.featureLayer) and their 2-d embedding with druidjs.
import * as druid from '@saehrimnir/druidjs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { chunksOf } from '../decision/classify.js';
import { PocovidError, UnknownChoiceError } from '../errors.js';
import { findLayer, layerOutput, modelTo } from './graph.js';
import { createForwardRunner, type ForwardRunnerOptions } from '../onnx/runtime.js';

export const EMBEDDING_METHODS = ['tsne', 'pca', 'umap'] as const;
export type EmbeddingMethod = (typeof EMBEDDING_METHODS)[number];

/** Features of `inputs` (each H×W×C) at `featureLayer`, flattened, in batches. */
export function extractFeatures(model: tfl.LayersModel, featureLayer: string, inputs: Float32Array[], shape: [number, number, number], batchSize = 16): number[][] {
  const features = modelTo(model, `features:${featureLayer}`, layerOutput(findLayer(model, featureLayer, 'features')));
  const out: number[][] = [];
  for (const chunk of chunksOf(inputs, shape, batchSize)) {
    const rows = tf.tidy(() => {
      const f = features.predict(tf.tensor4d(chunk.flat, [chunk.n, ...shape])) as tf.Tensor;
      return tf.reshape(f, [chunk.n, -1]).arraySync() as number[][];
    });
    out.push(...rows);
  }
  return out;
}

/**
 * input → [features at `featureLayer`, the model's probabilities] as one model sharing `model`'s
 * weights, so that one forward pass (on either runtime) gives both.
 */
export function featuresAndProbabilitiesModel(model: tfl.LayersModel, featureLayer: string): tfl.LayersModel {
  if (model.outputs.length !== 1) throw new PocovidError(`model "${model.name}" has ${model.outputs.length} outputs; expected one (probabilities)`);
  const features = layerOutput(findLayer(model, featureLayer, 'features'));
  // A fixed name: the ONNX cache fingerprint includes it, and auto names change with every model built.
  return tfl.model({ inputs: model.inputs, outputs: [features, model.outputs[0]!], name: `${model.name}_features_${featureLayer}` });
}

export interface FeaturesAndPredictions {
  /** Flattened features per input. */
  features: number[][];
  /** Probabilities per input. */
  probabilities: number[][];
}

/**
 * Features at `featureLayer` and probabilities of `inputs` (each H×W×C), in batches, on the chosen
 * runtime (default 'auto': ONNX Runtime where it loads).
 */
export async function extractFeaturesAndPredictions(
  model: tfl.LayersModel,
  featureLayer: string,
  inputs: Float32Array[],
  options: ForwardRunnerOptions & { batchSize?: number } = {},
): Promise<FeaturesAndPredictions> {
  const both = featuresAndProbabilitiesModel(model, featureLayer);
  const runner = await createForwardRunner(both, options);
  const batchSize = options.batchSize ?? 16;
  const size = runner.inputShape.reduce((a, b) => a * b, 1);
  const out: FeaturesAndPredictions = { features: [], probabilities: [] };
  try {
    for (let start = 0; start < inputs.length; start += batchSize) {
      const chunk = inputs.slice(start, start + batchSize);
      const flat = new Float32Array(chunk.length * size);
      chunk.forEach((x, i) => {
        if (x.length !== size) throw new PocovidError(`input ${start + i} has ${x.length} values; the model takes ${size}`);
        flat.set(x, i * size);
      });
      const [features, probabilities] = await runner.run(flat, chunk.length);
      out.features.push(...rows(features!, chunk.length));
      out.probabilities.push(...rows(probabilities!, chunk.length));
    }
  } finally {
    await runner.dispose();
  }
  return out;
}

function rows(values: Float32Array, n: number): number[][] {
  const width = values.length / n;
  return Array.from({ length: n }, (_, i) => Array.from(values.subarray(i * width, (i + 1) * width)));
}

/** 2-d coordinates for each feature row; seeded. */
export function embed2d(features: number[][], method: EmbeddingMethod, seed: number): [number, number][] {
  if (!EMBEDDING_METHODS.includes(method)) throw new UnknownChoiceError('embedding method', method, EMBEDDING_METHODS);
  const n = features.length;
  if (n < 3) throw new PocovidError(`an embedding needs at least 3 frames, got ${n}`);
  let points: ArrayLike<ArrayLike<number>>;
  if (method === 'pca') points = new druid.PCA(features, { d: 2, seed }).transform();
  else if (method === 'tsne') {
    // Perplexity must stay well below the number of points.
    points = new druid.TSNE(features, { d: 2, seed, perplexity: Math.max(2, Math.min(30, Math.floor((n - 1) / 3))) }).transform(500);
  } else points = new druid.UMAP(features, { d: 2, seed, n_neighbors: Math.max(2, Math.min(15, n - 1)) }).transform();
  return Array.from({ length: n }, (_, i) => [Number(points[i]![0]), Number(points[i]![1])]);
}
