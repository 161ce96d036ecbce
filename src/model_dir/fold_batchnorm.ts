// Frozen BatchNorm folded into the convolution before it, for an exported model. A frozen
// BatchNorm is an affine map per channel, y = γ·(x − mean)/√(var + ε) + β, so after a convolution
// it is the same convolution with its kernel scaled per output channel and a bias. TF.js runs it as
// a separate kernel over the whole activation, and on the wasm backend that kernel took half of
// MobileNet v1's forward pass (23 of 46 ms per 224² frame in Node, tf.profile): the page runs the
// folded network. The rewrite is of the files (the topology JSON and the float32 weights), so every
// loader builds the folded model; layer names other than the BatchNorms' stay (Grad-CAM's layer,
// the classifier, the adaptation's cut). Only a BatchNorm that is frozen, the only reader of a
// linear Conv2D or DepthwiseConv2D applied once, is folded. Browser-safe: bytes and JSON only.
import type * as tf from '@tensorflow/tfjs-core';
import { concatBytes } from '../util/bytes.js';
import { WEIGHTS_FILE, type LayersFiles } from './layers_io.js';
import { weightEntries } from './shared_weights.js';

/** One layer of a functional model's Keras topology, as TF.js writes it. */
interface LayerJson {
  name: string;
  class_name: string;
  config: Record<string, unknown> & { name: string };
  /** Per application: its inputs as [layer, node index, tensor index, kwargs]. */
  inbound_nodes: [string, number, number, unknown][][];
}

interface ModelTopology {
  class_name: string;
  config: { name: string; layers: LayerJson[]; input_layers: [string, number, number][]; output_layers: [string, number, number][] };
}

const CONVOLUTIONS = new Set(['Conv2D', 'DepthwiseConv2D']);

/** How many times each layer's output is read (by other layers and as a model output). */
function readers(topology: ModelTopology): Map<string, number> {
  const count = new Map<string, number>();
  const read = (name: string) => count.set(name, (count.get(name) ?? 0) + 1);
  for (const layer of topology.config.layers) for (const node of layer.inbound_nodes) for (const [source] of node) read(source);
  for (const [name] of topology.config.output_layers) read(name);
  return count;
}

export interface FoldedModel {
  files: LayersFiles;
  /** The BatchNorm layers folded, by name. */
  folded: string[];
}

/**
 * `files` (float32 weights) with every foldable frozen BatchNorm folded into its convolution
 * (see the module comment); the same files when there is none, or when the weights are stored in a
 * smaller type. `where` names the model in errors.
 */
export function foldBatchNorm(files: LayersFiles, where: string): FoldedModel {
  const topology = structuredClone(files.modelJson.modelTopology) as unknown as ModelTopology;
  if (topology?.class_name !== 'Model' && topology?.class_name !== 'Functional') return { files, folded: [] };
  const entries = weightEntries(files);
  // Weights already stored smaller are left as they are: folding would round them a second time
  // (and export refuses to store them again, naming the member).
  if (entries.some(({ spec }) => spec.quantization || spec.dtype !== 'float32')) return { files, folded: [] };
  const weights = new Map<string, { spec: tf.io.WeightsManifestEntry; values: Float32Array }>();
  for (const { spec, bytes } of entries) weights.set(spec.name, { spec, values: new Float32Array(bytes.slice().buffer) });
  const byName = new Map(topology.config.layers.map((layer) => [layer.name, layer]));
  const readCount = readers(topology);
  const renamed = new Map<string, string>(); // folded BatchNorm → its convolution
  for (const bn of topology.config.layers) {
    if (bn.class_name !== 'BatchNormalization' || bn.config['trainable'] !== false || bn.inbound_nodes.length !== 1 || bn.inbound_nodes[0]!.length !== 1) continue;
    const axis = bn.config['axis'];
    if (!(axis === -1 || axis === 3 || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3)))) continue;
    const conv = byName.get(bn.inbound_nodes[0]![0]![0]);
    if (!conv || !CONVOLUTIONS.has(conv.class_name) || conv.inbound_nodes.length !== 1 || readCount.get(conv.name) !== 1) continue;
    if ((conv.config['activation'] ?? 'linear') !== 'linear' || (conv.config['data_format'] ?? 'channels_last') !== 'channels_last') continue;
    const kernel = weights.get(`${conv.name}/${conv.class_name === 'Conv2D' ? 'kernel' : 'depthwise_kernel'}`);
    const mean = weights.get(`${bn.name}/moving_mean`);
    const variance = weights.get(`${bn.name}/moving_variance`);
    if (!kernel || !mean || !variance) continue;
    const channels = mean.values.length;
    const gamma = bn.config['scale'] === false ? undefined : weights.get(`${bn.name}/gamma`)?.values;
    const beta = bn.config['center'] === false ? undefined : weights.get(`${bn.name}/beta`)?.values;
    const epsilon = Number(bn.config['epsilon'] ?? 1e-3);
    const scale = Float32Array.from({ length: channels }, (_, c) => (gamma ? gamma[c]! : 1) / Math.sqrt(variance.values[c]! + epsilon));
    // Conv2D [kh, kw, in, out] and DepthwiseConv2D [kh, kw, in, multiplier]: the output channel
    // is the last index, or in·multiplier + m, both the flat index modulo the channel count.
    if (kernel.values.length % channels !== 0) throw new Error(`${where}: ${bn.name} has ${channels} channels, ${conv.name}'s kernel ${kernel.values.length} values`);
    const folded = Float32Array.from(kernel.values, (v, i) => v * scale[i % channels]!);
    const oldBias = conv.config['use_bias'] === true ? weights.get(`${conv.name}/bias`)?.values : undefined;
    const bias = Float32Array.from({ length: channels }, (_, c) => ((oldBias ? oldBias[c]! : 0) - mean.values[c]!) * scale[c]! + (beta ? beta[c]! : 0));
    weights.set(kernel.spec.name, { spec: kernel.spec, values: folded });
    weights.set(`${conv.name}/bias`, { spec: { name: `${conv.name}/bias`, shape: [channels], dtype: 'float32' }, values: bias });
    for (const part of ['gamma', 'beta', 'moving_mean', 'moving_variance']) weights.delete(`${bn.name}/${part}`);
    conv.config['use_bias'] = true;
    renamed.set(bn.name, conv.name);
  }
  if (renamed.size === 0) return { files, folded: [] };
  topology.config.layers = topology.config.layers.filter((layer) => !renamed.has(layer.name));
  for (const layer of topology.config.layers) for (const node of layer.inbound_nodes) for (const input of node) input[0] = renamed.get(input[0]) ?? input[0];
  for (const output of topology.config.output_layers) output[0] = renamed.get(output[0]) ?? output[0];
  // The weights in their old order; a new bias right after its convolution's kernel.
  // (A Set keeps the first place a name is added: a bias already placed after its kernel stays there.)
  const order = new Set<string>();
  for (const name of weights.keys()) {
    order.add(name);
    const bias = name.replace(/\/(depthwise_)?kernel$/, '/bias');
    if (bias !== name && weights.has(bias)) order.add(bias);
  }
  const specs = [...order].map((name) => weights.get(name)!.spec);
  const data = concatBytes([...order].map((name) => new Uint8Array(weights.get(name)!.values.buffer)));
  return {
    files: {
      modelJson: { ...files.modelJson, modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'], weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs }] },
      weightFiles: new Map([[WEIGHTS_FILE, data]]),
    },
    folded: [...renamed.keys()],
  };
}
