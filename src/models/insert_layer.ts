// The new layer of `pocovid update --mode new-layer` and of the page's adaptation panel (src/adapt):
// a Dense layer put before the classifier that starts as the identity (kernel I, bias 0, ReLU on
// features that are ReLU outputs already), every other layer frozen, so that the model begins
// exactly where it was and only the new layer learns. Done on model.json, so the result is an
// ordinary saved model (it loads in predict, serve, export and the page like any other).
// Browser-safe: plain JSON and bytes.
import type * as tf from '@tensorflow/tfjs-core';
import { PocovidError } from '../errors.js';
import type { LayersFiles } from '../model_dir/layers_io.js';

/** What `update` and the page's adaptation train: the part the model trained (head), or a new layer. */
export const UPDATE_MODES = ['head', 'new-layer'] as const;
export type UpdateMode = (typeof UPDATE_MODES)[number];

/** Name of the layer `update` adds: update_1, update_2... (a model updated twice keeps both). */
function newLayerName(layers: { name: string }[]): string {
  let n = 1;
  while (layers.some((l) => l.name === `update_${n}`)) n++;
  return `update_${n}`;
}

interface KerasLayerJson {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[];
}

/** Width of the classifier's input (rows of its kernel): the new layer is width × width. */
export function classifierWidth(files: LayersFiles, classifier: string): number {
  const kernel = files.modelJson.weightsManifest.flatMap((g) => g.weights).find((w) => w.name === `${classifier}/kernel`);
  if (!kernel || kernel.shape.length !== 2) throw new PocovidError(`model.json: the classifier "${classifier}" has no 2-d kernel`);
  return kernel.shape[0]!;
}

/**
 * The member's files with a Dense layer inserted before `classifier`: identity kernel, zero bias,
 * ReLU, and every other layer marked untrainable. Done on model.json so that the result is an
 * ordinary saved model (it loads in predict, serve, export and the page like any other).
 */
export function insertLayerBeforeClassifier(files: LayersFiles, classifier: string): { files: LayersFiles; layer: string } {
  const json = structuredClone(files.modelJson) as tf.io.ModelJSON;
  const topology = json.modelTopology as { config?: { layers?: KerasLayerJson[] } };
  const layers = topology.config?.layers;
  if (!Array.isArray(layers)) throw new PocovidError('model.json: not a functional Layers model (no config.layers)');
  const at = layers.findIndex((l) => l.name === classifier);
  if (at < 0) throw new PocovidError(`model.json: no layer "${classifier}" (the classifier) to put a layer before`);
  const target = layers[at]!;
  const width = classifierWidth(files, classifier);
  const name = newLayerName(layers);
  for (const layer of layers) layer.config.trainable = false;
  const inserted: KerasLayerJson = {
    name,
    class_name: 'Dense',
    config: {
      units: width,
      activation: 'relu',
      use_bias: true,
      kernel_initializer: { class_name: 'Identity', config: { gain: 1 } },
      bias_initializer: { class_name: 'Zeros', config: {} },
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
      name,
      trainable: true,
    },
    inbound_nodes: target.inbound_nodes,
  };
  target.inbound_nodes = [[[name, 0, 0, {}]]];
  layers.splice(at, 0, inserted);
  // Identity kernel and zero bias, appended to the one weight file after the member's own weights.
  const values = new Float32Array(width * width + width);
  for (let i = 0; i < width; i++) values[i * width + i] = 1;
  const group = json.weightsManifest[0]!;
  if (json.weightsManifest.length !== 1 || group.paths.length !== 1) throw new PocovidError('model.json: expected one weight file');
  group.weights.push({ name: `${name}/kernel`, shape: [width, width], dtype: 'float32' }, { name: `${name}/bias`, shape: [width], dtype: 'float32' });
  const old = files.weightFiles.get(group.paths[0]!)!;
  const joined = new Uint8Array(old.byteLength + values.byteLength);
  joined.set(old, 0);
  joined.set(new Uint8Array(values.buffer), old.byteLength);
  return { files: { modelJson: json, weightFiles: new Map([[group.paths[0]!, joined]]) }, layer: name };
}
