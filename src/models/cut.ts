// Cutting one flat functional model into a frozen backbone and a trainable head that share
// the very same layer objects (so weights are shared), plus freezing by "last n conv units".
//
// Why cut instead of building two models: the flat model is what is saved, exported and run in
// the page (Keras names, one graph), while the trainer wants to run the frozen part once per
// image (feature cache) and train only the head on those features.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import { camHead, pocovidHead, SeededInit } from './heads.js';
import type { BuiltModel, HeadKind, ModelOptions, PretrainedCfg } from './types.js';

type Layer = tfl.LayersModel['layers'][number];
type LayerNode = Layer['inboundNodes'][number];
type SymbolicTensor = tfl.SymbolicTensor;

/** The node through which `layer` takes part in `model`'s graph (a shared layer has one per graph). */
function nodeInModel(model: tfl.LayersModel, layer: Layer): LayerNode {
  for (let i = 0; i < layer.inboundNodes.length; i++) {
    if (model.containerNodes.has(`${layer.name}_ib-${i}`)) return layer.inboundNodes[i]!;
  }
  throw new Error(`layer "${layer.name}" has no node in model "${model.name}"`);
}

/**
 * The output tensor of layer `layerName` inside `model`'s graph. Use this instead of
 * `model.getLayer(name).output`: head layers are shared by the flat model and the head, so they
 * have two inbound nodes and tfjs refuses `.output` on them.
 */
export function layerOutput(model: tfl.LayersModel, layerName: string): SymbolicTensor {
  const layer = model.getLayer(layerName);
  const outputs = nodeInModel(model, layer).outputTensors;
  if (outputs.length !== 1) throw new Error(`layer "${layerName}" has ${outputs.length} outputs, expected 1`);
  return outputs[0]!;
}

const hasTrainableWeights = (layer: Layer): boolean => layer.trainableWeights.length > 0;

/**
 * Head = every layer that depends, transitively, on a layer with trainable weights; backbone =
 * the rest. Boundary = backbone tensors read by head layers (several when the cut falls inside a
 * residual block). Returns backbone undefined and head = model when the boundary is the input.
 */
export function cutModel(model: tfl.LayersModel): { backbone: tfl.LayersModel | undefined; head: tfl.LayersModel } {
  const { headLayers, inHead } = headLayersOf(model);

  const boundary: SymbolicTensor[] = [];
  for (const layer of headLayers) {
    for (const tensor of nodeInModel(model, layer).inputTensors) {
      if (!inHead.has(tensor.sourceLayer) && !boundary.includes(tensor)) boundary.push(tensor);
    }
  }
  if (boundary.every((tensor) => model.inputs.includes(tensor))) return { backbone: undefined, head: model };

  const backbone = tfl.model({ inputs: model.inputs, outputs: boundary, name: `${model.name}_backbone` });

  // Re-apply the head layers on fresh inputs: applying a layer again adds a node to it but keeps
  // its weights, so the head trains the flat model's variables.
  const replaced = new Map<SymbolicTensor, SymbolicTensor>();
  const headInputs = boundary.map((tensor) => {
    const input = tfl.input({ shape: tensor.shape.slice(1) as number[], name: `${tensor.sourceLayer.name}_output` });
    replaced.set(tensor, input);
    return input;
  });
  applyAgain(model, headLayers, replaced);
  const headOutputs = model.outputs.map((tensor) => {
    const output = replaced.get(tensor);
    if (!output) throw new Error(`output "${tensor.name}" of model "${model.name}" does not depend on a trainable layer`);
    return output;
  });
  const head = tfl.model({ inputs: headInputs, outputs: headOutputs, name: `${model.name}_head` });
  return { backbone, head };
}

/** The layers that depend, transitively, on a layer with trainable weights, in `model`'s topological order. */
function headLayersOf(model: tfl.LayersModel): { headLayers: Layer[]; inHead: Set<Layer> } {
  // model.layers is in topological order (inputs first), so one pass finds every dependant.
  const headLayers: Layer[] = [];
  const inHead = new Set<Layer>();
  for (const layer of model.layers) {
    if (model.inputLayers.includes(layer)) continue;
    const node = nodeInModel(model, layer);
    if (hasTrainableWeights(layer) || node.inboundLayers.some((source) => inHead.has(source))) {
      inHead.add(layer);
      headLayers.push(layer);
    }
  }
  if (headLayers.length === 0) throw new PocovidError(`model "${model.name}" has no trainable layer to cut a head from`);
  return { headLayers, inHead };
}

/**
 * The weights of the layers before `model`'s cut (its frozen backbone), without building the cut's
 * models; empty when the cut is at the input.
 */
export function backboneWeights(model: tfl.LayersModel): tfl.LayersModel['weights'] {
  const { inHead } = headLayersOf(model);
  return model.layers.filter((layer) => !inHead.has(layer)).flatMap((layer) => layer.weights);
}

/**
 * `model` with its head (the layers cutModel puts there) made again from the same classes and
 * configurations, on new weights (initialised; the caller sets them), and its backbone layers
 * shared, weights included: another member of an ensemble whose members differ in their heads
 * only, without building, initialising and filling its backbone again. The flat model keeps the
 * backbone's graph (Grad-CAM walks it) and its layer names.
 */
export function withNewHead(model: tfl.LayersModel, name: string): { model: tfl.LayersModel; headLayers: Layer[] } {
  const { headLayers: old } = headLayersOf(model);
  const classes = tf.serialization.SerializationMap.getMap().classNameMap;
  const replaced = new Map<SymbolicTensor, SymbolicTensor>();
  const headLayers = old.map((layer) => {
    const entry = classes[layer.getClassName()];
    if (!entry) throw new Error(`layer class ${layer.getClassName()} is not registered`);
    const [cls, fromConfig] = entry;
    const fresh = fromConfig(cls, layer.getConfig()) as Layer;
    const node = nodeInModel(model, layer);
    // Backbone tensors are read as they are; head tensors through their new counterparts.
    const inputs = node.inputTensors.map((tensor) => replaced.get(tensor) ?? tensor);
    const applied = fresh.apply(inputs.length === 1 ? inputs[0]! : inputs, node.callArgs ?? {});
    const outputs = (Array.isArray(applied) ? applied : [applied]) as SymbolicTensor[];
    node.outputTensors.forEach((tensor, i) => replaced.set(tensor, outputs[i]!));
    return fresh;
  });
  const outputs = model.outputs.map((tensor) => replaced.get(tensor) ?? tensor);
  const built = tfl.model({ inputs: model.inputs, outputs, name });
  // The backbone's layers now belong to two models, each of which disposes them once: TF.js counts
  // a layer's uses by its applications, and these layers were not applied again (a second
  // application would give them a second graph, which Grad-CAM does not walk), so count this use.
  const fresh = new Set<Layer>(headLayers);
  for (const layer of built.layers) {
    const counted = layer as unknown as { _refCount: number | null };
    if (!fresh.has(layer) && !built.inputLayers.includes(layer) && typeof counted._refCount === 'number') counted._refCount++;
  }
  return { model: built, headLayers };
}

/**
 * Applies `layers` (in `model`'s topological order) again, reading each node's inputs through
 * `replaced` (old tensor → new tensor) and recording its outputs there.
 */
function applyAgain(model: tfl.LayersModel, layers: readonly Layer[], replaced: Map<SymbolicTensor, SymbolicTensor>): void {
  for (const layer of layers) {
    const node = nodeInModel(model, layer);
    const inputs = node.inputTensors.map((tensor) => {
      const input = replaced.get(tensor);
      if (!input) throw new Error(`layer "${layer.name}" reads a tensor outside the rebuilt graph`);
      return input;
    });
    const applied = layer.apply(inputs.length === 1 ? inputs[0]! : inputs, node.callArgs ?? {});
    const outputs = (Array.isArray(applied) ? applied : [applied]) as SymbolicTensor[];
    node.outputTensors.forEach((tensor, i) => replaced.set(tensor, outputs[i]!));
  }
}

/**
 * `model`'s graph applied again to new `inputs` (one per model input, e.g. of another spatial
 * size): a new model that shares every layer, and so every weight, with `model`.
 */
export function reapplyLayers(model: tfl.LayersModel, inputs: SymbolicTensor[], name: string): tfl.LayersModel {
  if (inputs.length !== model.inputs.length) throw new PocovidError(`model "${model.name}" takes ${model.inputs.length} inputs, got ${inputs.length}`);
  const replaced = new Map<SymbolicTensor, SymbolicTensor>();
  model.inputs.forEach((tensor, i) => replaced.set(tensor, inputs[i]!));
  applyAgain(model, model.layers.filter((layer) => !model.inputLayers.includes(layer)), replaced);
  return tfl.model({ inputs, outputs: model.outputs.map((tensor) => replaced.get(tensor)!), name });
}

/**
 * Freezes every unit (a conv layer and its BatchNorm, by name) except the last `trainable` of
 * `units`; layers not named in any unit (the head) are left trainable.
 */
export function freezeAllButLast(model: tfl.LayersModel, units: readonly (readonly string[])[], trainable: number): void {
  if (trainable > units.length) {
    throw new PocovidError(`trainableLayers ${trainable} exceeds the ${units.length} conv layers of model "${model.name}"`);
  }
  units.forEach((unit, index) => {
    const frozen = index < units.length - trainable;
    for (const name of unit) model.getLayer(name).trainable = !frozen;
  });
  for (const layer of model.layers) {
    if (layer.getClassName() === 'BatchNormalization') runInferenceWhenFrozen(layer);
  }
}

const patched = new WeakSet<Layer>();

/**
 * tfjs BatchNormalization uses batch statistics and updates its moving mean/variance whenever it
 * is called with training=true, even when trainable is false. Keras (>= 2.1.3) runs a frozen
 * BatchNorm in inference mode instead, which is what fine-tuning a pretrained backbone needs:
 * otherwise a frozen layer's statistics drift during `fit`. The check is made per call so that
 * unfreezing later restores normal training behaviour. Serialisation is unaffected.
 */
function runInferenceWhenFrozen(layer: Layer): void {
  if (patched.has(layer)) return;
  patched.add(layer);
  const call = layer.call.bind(layer);
  layer.call = (inputs, kwargs) => call(inputs, layer.trainable ? kwargs : { ...kwargs, training: false });
}

/**
 * Disposes a model's weights once, with the head cut from it (the backbone and head share the flat
 * model's layers; the head's were applied twice, so TF.js frees them only once both are disposed).
 * A model never cut (no head) is disposed alone.
 */
export function disposeBuiltModel(built: { model: tfl.LayersModel; head?: tfl.LayersModel }): void {
  built.model.dispose();
  if (built.head && built.head !== built.model) built.head.dispose();
}

/** What a backbone file tells buildBackboneModel about its network. */
export interface BackboneDef {
  name: string;
  /** Default config; the built model's cfg carries the input size actually used. */
  cfg: PretrainedCfg;
  /** Smallest input side the network's strides and poolings allow. */
  minInput: number;
  /** Conv units in backbone order, each [conv, its BatchNorm?]; the last `trainableLayers` stay trainable. */
  units: readonly (readonly string[])[];
  defaultTrainableLayers: number;
  /** The model's own head: POCOVID-Net's (with its pooling and whether it has BatchNorm) or the linear (CAM) head. */
  head: { kind: 'pocovid'; pooling: 'avg4x4' | 'global'; batchNorm: boolean } | { kind: 'linear' };
  /** Stride-2 convolutions `features` can anti-alias (ModelOptions.antiAlias, src/models/anti_alias.ts); absent: none. */
  stridedConvs?: number;
}

/** The penultimate feature layer of each head (t-SNE, embeddings). */
const FEATURE_LAYER: Record<HeadKind, string> = { pocovid: 'head_relu', linear: 'cam_gap' };

/**
 * The build every backbone shares: checks the input size, makes the seeded initialiser and the
 * input layer, lets `features` apply the backbone's layers, puts the chosen head on top (the
 * model's own by default), then makes the flat model, freezes all but the last trainable units
 * and cuts it into backbone and head.
 */
export function buildBackboneModel(
  def: BackboneDef,
  options: ModelOptions,
  features: (input: SymbolicTensor, init: SeededInit) => SymbolicTensor,
): BuiltModel {
  const inputSize = options.inputSize ?? def.cfg.inputSize;
  if (Math.min(...inputSize) < def.minInput) {
    throw new PocovidError(`${def.name} needs an input of at least ${def.minInput}×${def.minInput}, got ${inputSize.join('×')}`);
  }
  const antiAlias = options.antiAlias ?? 0;
  if (antiAlias > 0 && !def.stridedConvs) throw new PocovidError(`anti-aliased downsampling is built for mobilenet_v1 only, not for ${def.name}`);
  if (!Number.isInteger(antiAlias) || antiAlias < 0 || antiAlias > (def.stridedConvs ?? 0)) {
    throw new PocovidError(`${def.name} has ${def.stridedConvs ?? 0} stride-2 convolutions to anti-alias, got ${antiAlias}`);
  }
  const kind = options.head ?? def.head.kind;
  if (kind === 'pocovid' && def.head.kind !== 'pocovid') {
    throw new PocovidError(`${def.name} has only the linear (CAM) head; the POCOVID head is on the other backbones`);
  }
  const init = new SeededInit(options.seed ?? 0);
  const input = tfl.input({ shape: [...inputSize, def.cfg.channels], name: 'input' });
  const x = features(input, init);
  const head = { numClasses: options.numClasses, dropout: options.dropout ?? 0.5, init };
  const output = def.head.kind === 'pocovid' && kind === 'pocovid' ? pocovidHead(x, { ...head, pooling: def.head.pooling, batchNorm: def.head.batchNorm }) : camHead(x, head);
  const grey = options.colour === 'grey' && def.cfg.channels === 3;
  return assembleBuiltModel({
    name: def.name,
    cfg: {
      ...def.cfg,
      inputSize: [...inputSize],
      ...(kind === def.head.kind ? {} : { featureLayer: FEATURE_LAYER[kind] }),
      ...(grey ? { colour: 'grey' as const } : {}),
      ...(options.sector && options.sector !== 'off' ? { sector: options.sector } : {}),
      ...(options.blur ? { blur: options.blur } : {}),
      ...(antiAlias > 0 ? { antiAlias } : {}),
    },
    numClasses: options.numClasses,
    trainableLayers: options.trainableLayers ?? def.defaultTrainableLayers,
    input,
    output,
    units: def.units,
  });
}

interface ModelGraph {
  name: string;
  cfg: BuiltModel['cfg'];
  numClasses: number;
  trainableLayers: number;
  input: SymbolicTensor;
  output: SymbolicTensor;
  units: readonly (readonly string[])[];
}

/** Makes the flat model from a built graph, freezes it and cuts it: the last step of every backbone's build. */
function assembleBuiltModel(graph: ModelGraph): BuiltModel {
  const model = tfl.model({ inputs: graph.input, outputs: graph.output, name: graph.name });
  let parts: ReturnType<typeof cutModel>;
  try {
    freezeAllButLast(model, graph.units, graph.trainableLayers);
    parts = cutModel(model);
  } catch (err) {
    model.dispose(); // the weights exist as soon as the layers are applied
    throw err;
  }
  const { backbone, head } = parts;
  return {
    name: graph.name,
    cfg: graph.cfg,
    numClasses: graph.numClasses,
    trainableLayers: graph.trainableLayers,
    model,
    backbone,
    head,
  };
}
