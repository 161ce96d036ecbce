// Grad-CAM (Selvaraju et al. 2017): weights = spatial mean of d(class score)/d(activation) at the
// CAM layer; map = ReLU(sum_c weight_c * activation_c), upsampled to the input size.
// Pure: a Layers model + an input tensor in, a [0,1] map out. No I/O, runs in Node and the browser.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export interface GradCamResult {
  /** Row-major H×W (the model's input size), normalised so the maximum is 1 (all zeros if no evidence). */
  map: Float32Array;
  height: number;
  width: number;
  /** The class the map explains. */
  classIndex: number;
}

type Sym = tfl.SymbolicTensor;

const featureModels = new WeakMap<tfl.LayersModel, Map<string, tfl.LayersModel>>();

function featureModelFor(model: tfl.LayersModel, camLayer: string): tfl.LayersModel {
  let byLayer = featureModels.get(model);
  if (!byLayer) featureModels.set(model, (byLayer = new Map()));
  let feature = byLayer.get(camLayer);
  if (!feature) {
    feature = tfl.model({ inputs: model.inputs, outputs: camOutput(model, camLayer) });
    byLayer.set(camLayer, feature);
  }
  return feature;
}

function camOutput(model: tfl.LayersModel, camLayer: string): Sym {
  let layer;
  try {
    layer = model.getLayer(camLayer);
  } catch {
    throw new Error(`Grad-CAM layer "${camLayer}" is not in model "${model.name}"`);
  }
  // Node 0 is the layer's use in the full model (cut sub-models add later nodes).
  return layer.getOutputAt(0) as Sym;
}

/**
 * Runs the layers after the CAM layer eagerly on `activation`, returning the class score.
 * The score is the pre-softmax logit when the last layer is a softmax Dense or Activation
 * (softmax saturates, giving vanishing gradients for confident predictions), else log p.
 */
function classScore(model: tfl.LayersModel, camLayer: string, activation: tf.Tensor, classIndex: number): tf.Scalar {
  const start = camOutput(model, camLayer);
  const values = new Map<number, tf.Tensor>([[start.id, activation]]);
  const layers = model.layers;
  const last = layers[layers.length - 1]!;
  let logits: tf.Tensor | undefined;
  for (const layer of layers) {
    const node = layer.inboundNodes[0];
    if (!node || node.inputTensors.length === 0) continue;
    const inputs = node.inputTensors;
    const known = inputs.filter((t) => values.has(t.id));
    if (known.length === 0) continue;
    if (known.length < inputs.length) {
      throw new Error(`Grad-CAM: layer "${layer.name}" after "${camLayer}" also reads tensors computed before it`);
    }
    const args = inputs.map((t) => values.get(t.id)!);
    const input = args.length === 1 ? args[0]! : args;
    if (layer === last) logits = logitsOf(layer, input);
    const out = layer.apply(input) as tf.Tensor | tf.Tensor[];
    node.outputTensors.forEach((t, i) => values.set(t.id, Array.isArray(out) ? out[i]! : out));
  }
  const output = values.get((model.outputs[0] as Sym).id);
  if (!output) throw new Error(`Grad-CAM: the model output does not depend on layer "${camLayer}"`);
  const scores = logits ?? tf.log(tf.add(output, 1e-12));
  // A one-hot mask rather than tf.gather: gather's gradient needs UnsortedSegmentSum, which wasm lacks.
  const classes = scores.shape[scores.shape.length - 1]!;
  const mask = new Float32Array(classes);
  mask[classIndex] = 1;
  return tf.sum(tf.mul(tf.reshape(scores, [-1, classes]), tf.tensor2d(mask, [1, classes])));
}

function logitsOf(layer: tfl.layers.Layer, input: tf.Tensor | tf.Tensor[]): tf.Tensor | undefined {
  const config = layer.getConfig();
  if (config['activation'] !== 'softmax' || Array.isArray(input)) return undefined;
  if (layer.getClassName() === 'Activation') return input;
  if (layer.getClassName() === 'Dense') {
    const [kernel, bias] = layer.getWeights();
    const z = tf.matMul(tf.reshape(input, [-1, input.shape[input.shape.length - 1]!]), kernel!);
    return bias ? tf.add(z, bias) : z;
  }
  return undefined;
}

/**
 * Grad-CAM for one input (shape [1, H, W, C]). `classIndex` defaults to the predicted class.
 * Leaves no tensors behind.
 */
export function gradCam(model: tfl.LayersModel, input: tf.Tensor, camLayer: string, classIndex?: number): GradCamResult {
  if (input.rank !== 4 || input.shape[0] !== 1) throw new Error(`Grad-CAM expects one input of shape [1,H,W,C], got [${input.shape}]`);
  const [, height, width] = input.shape as [number, number, number, number];
  const chosen = classIndex ?? tf.tidy(() => tf.argMax(model.predict(input) as tf.Tensor, -1).dataSync()[0]!);
  const map = tf.tidy(() => {
    const activation = featureModelFor(model, camLayer).predict(input) as tf.Tensor;
    if (activation.rank !== 4) throw new Error(`Grad-CAM layer "${camLayer}" output must be [1,h,w,c], got [${activation.shape}]`);
    const grads = tf.grad((a: tf.Tensor) => classScore(model, camLayer, a, chosen))(activation);
    const weights = tf.mean(grads, [1, 2], true);
    const cam = tf.relu(tf.sum(tf.mul(activation, weights), -1, true)) as tf.Tensor4D;
    const up = tf.reshape(tf.image.resizeBilinear(cam, [height, width]), [height * width]);
    const peak = tf.max(up);
    return tf.where(tf.greater(peak, 0), tf.div(up, tf.maximum(peak, 1e-12)), tf.zerosLike(up));
  });
  const values = map.dataSync() as Float32Array;
  map.dispose();
  return { map: Float32Array.from(values), height, width, classIndex: chosen };
}
