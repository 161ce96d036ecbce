// CAM (Zhou et al. 2016) for models whose classifier reads the CAM layer through one global average
// pooling (vgg16_cam): map_c = Σ_k w[k, c] · A_k, exact and gradient-free. ReLU keeps the evidence
// for the class, as Grad-CAM does, so both maps read the same way.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import type { GradCamResult } from './gradcam.js';
import { findLayer, layerInput, layerOutput, modelTo } from './graph.js';

/** Layers that may sit between the pooling and the classifier without changing CAM's meaning. */
const PASS_THROUGH = new Set(['Dropout', 'Flatten']);

/** Checks that classifier(GAP(camLayer)) is the model's path; returns the classifier kernel [C, K]. */
function camKernel(model: tfl.LayersModel, camLayer: string, classifier: string): tf.Tensor {
  const dense = findLayer(model, classifier, 'CAM');
  const cam = findLayer(model, camLayer, 'CAM');
  let layer = model.layers.find((l) => layerOutput(l).id === layerInput(dense).id);
  while (layer && PASS_THROUGH.has(layer.getClassName())) {
    const source = layerInput(layer);
    layer = model.layers.find((l) => layerOutput(l).id === source.id);
  }
  const pooledFromCam = layer?.getClassName() === 'GlobalAveragePooling2D' && layerInput(layer).id === layerOutput(cam).id;
  if (!pooledFromCam || dense.getClassName() !== 'Dense') {
    throw new PocovidError(
      `CAM needs "${classifier}" to be a Dense layer reading global average pooling of "${camLayer}" (vgg16_cam); use Grad-CAM for model "${model.name}"`,
    );
  }
  return dense.getWeights()[0]!;
}

/** True when the model has the CAM structure (so `method all` can include CAM). */
export function supportsCam(model: tfl.LayersModel, camLayer: string, classifier: string): boolean {
  try {
    camKernel(model, camLayer, classifier);
    return true;
  } catch {
    return false;
  }
}

/** CAM of one input [1, H, W, C], upsampled bilinearly and normalised to a maximum of 1. */
export function classActivationMap(
  model: tfl.LayersModel,
  input: tf.Tensor,
  camLayer: string,
  classifier: string,
  classIndex?: number,
): GradCamResult {
  if (input.rank !== 4 || input.shape[0] !== 1) throw new Error(`CAM expects one input of shape [1,H,W,C], got [${input.shape}]`);
  const [, height, width] = input.shape as [number, number, number, number];
  const kernel = camKernel(model, camLayer, classifier);
  const chosen = classIndex ?? tf.tidy(() => tf.argMax(model.predict(input) as tf.Tensor, -1).dataSync()[0]!);
  const features = modelTo(model, `cam:${camLayer}`, layerOutput(findLayer(model, camLayer, 'CAM')));
  const map = tf.tidy(() => {
    const activation = features.predict(input) as tf.Tensor4D;
    const weights = tf.reshape(tf.gather(kernel, [chosen], 1), [1, 1, 1, -1]);
    const cam = tf.relu(tf.sum(tf.mul(activation, weights), -1, true)) as tf.Tensor4D;
    const up = tf.reshape(tf.image.resizeBilinear(cam, [height, width]), [height * width]);
    const peak = tf.max(up);
    return tf.where(tf.greater(peak, 0), tf.div(up, tf.maximum(peak, 1e-12)), tf.zerosLike(up));
  });
  const values = Float32Array.from(map.dataSync() as Float32Array);
  map.dispose();
  return { map: values, height, width, classIndex: chosen };
}
