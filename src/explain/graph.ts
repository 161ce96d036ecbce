// Eager walks over a flat functional Layers model: sub-models ending at a named layer, and a
// forward pass where chosen layers are replaced (MC dropout). Shared by every explanation method.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type Sym = tfl.SymbolicTensor;
type Layer = tfl.LayersModel['layers'][number];

/** The layer called `name`, or an error naming the model and the layers it does have. */
export function findLayer(model: tfl.LayersModel, name: string, purpose: string): Layer {
  const layer = model.layers.find((l) => l.name === name);
  if (!layer) {
    const names = model.layers.map((l) => l.name);
    const shown = names.length > 12 ? [...names.slice(0, 6), '...', ...names.slice(-6)] : names;
    throw new Error(`${purpose}: layer "${name}" is not in model "${model.name}" (layers: ${shown.join(', ')})`);
  }
  return layer;
}

/** Output of `layer` in the full model (node 0; sub-models cut from it add later nodes). */
export function layerOutput(layer: Layer): Sym {
  return layer.getOutputAt(0) as Sym;
}

/** Input of `layer` in the full model. */
export function layerInput(layer: Layer): Sym {
  const input = layer.getInputAt(0);
  if (Array.isArray(input)) throw new Error(`layer "${layer.name}" has ${input.length} inputs; expected one`);
  return input as Sym;
}

const subModels = new WeakMap<tfl.LayersModel, Map<string, tfl.LayersModel>>();

/** input → `tensor` as a model sharing the weights of `model`; cached per (model, key). */
export function modelTo(model: tfl.LayersModel, key: string, tensor: Sym): tfl.LayersModel {
  let byKey = subModels.get(model);
  if (!byKey) subModels.set(model, (byKey = new Map()));
  let sub = byKey.get(key);
  if (!sub) {
    sub = tfl.model({ inputs: model.inputs, outputs: tensor });
    byKey.set(key, sub);
  }
  return sub;
}

/**
 * Runs `model` eagerly layer by layer (inference mode). `replace(layer, input)` may return a tensor
 * to use instead of the layer's own output (undefined = run the layer normally).
 */
export function forwardWith(
  model: tfl.LayersModel,
  input: tf.Tensor,
  replace: (layer: Layer, input: tf.Tensor) => tf.Tensor | undefined,
  known?: ReadonlyMap<number, tf.Tensor>,
): tf.Tensor {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('forwardWith: only single-input, single-output models');
  // With `known`, start from it alone so that the layers before it are not run again.
  const values = new Map<number, tf.Tensor>(known && known.size > 0 ? known : [[model.inputs[0]!.id, input]]);
  for (const layer of model.layers) {
    const node = layer.inboundNodes[0];
    if (!node || node.inputTensors.length === 0 || layer.getClassName() === 'InputLayer') continue;
    if (node.outputTensors.every((t) => values.has(t.id))) continue; // given in `known`
    const inputs = node.inputTensors.map((t) => values.get(t.id));
    if (inputs.some((t) => t === undefined)) continue; // an InputLayer, or a branch not fed by the input
    const args = inputs as tf.Tensor[];
    const x = args.length === 1 ? args[0]! : args;
    const out = (!Array.isArray(x) ? replace(layer, x) : undefined) ?? (layer.apply(x, { training: false }) as tf.Tensor | tf.Tensor[]);
    node.outputTensors.forEach((t, i) => values.set(t.id, Array.isArray(out) ? out[i]! : out));
  }
  const output = values.get(model.outputs[0]!.id);
  if (!output) throw new Error(`forwardWith: the output of model "${model.name}" was not reached`);
  return output;
}

/**
 * The tensors that layers downstream of `isStochastic` layers read from the deterministic rest of
 * the network, computed once (by symbolic tensor id). Passing them as `known` to forwardWith makes
 * repeated stochastic passes (MC dropout) run only the layers after the first stochastic one.
 * Every returned tensor is the caller's to dispose.
 */
export function deterministicFrontier(model: tfl.LayersModel, input: tf.Tensor, isStochastic: (layer: Layer) => boolean): Map<number, tf.Tensor> {
  const tainted = new Set<number>();
  const needed = new Set<number>();
  for (const layer of model.layers) {
    const node = layer.inboundNodes[0];
    if (!node || layer.getClassName() === 'InputLayer') continue;
    const fromTainted = node.inputTensors.some((t) => tainted.has(t.id));
    if (isStochastic(layer) || fromTainted) {
      node.outputTensors.forEach((t) => tainted.add(t.id));
      node.inputTensors.filter((t) => !tainted.has(t.id)).forEach((t) => needed.add(t.id));
    }
  }
  const inputId = model.inputs[0]!.id;
  const wanted = [...needed].filter((id) => id !== inputId);
  const symbolic = model.layers.flatMap((l) => (l.inboundNodes[0]?.outputTensors ?? []) as Sym[]).filter((t) => wanted.includes(t.id));
  // A clone, so that the caller may dispose every value of the result.
  const result = new Map<number, tf.Tensor>(needed.has(inputId) ? [[inputId, tf.clone(input)]] : []);
  if (symbolic.length === 0) return result;
  const prefix = tfl.model({ inputs: model.inputs, outputs: symbolic });
  const outputs = prefix.predict(input);
  (Array.isArray(outputs) ? outputs : [outputs]).forEach((t, i) => result.set(symbolic[i]!.id, t));
  return result;
}
