// Some heads read only part of the backbone's feature map. POCOVID-Net's VGG-16 head pools the 7×7
// block5_pool map with a 4×4 *valid* AveragePooling, so only the top-left 4×4 of it reaches the
// classifier: block5_conv3 outputs outside its top-left 8×8 never matter, nor do rows and columns
// 9–13 of that conv's 14×14 input. Training on the whole map spends two thirds of the trainable
// conv's FLOPs (forward and filter gradient) on values that are thrown away.
//
// This finds the region of each head input that can change the outputs (a gradient probe), rebuilds
// the head on that crop with the very same layer objects (so it trains the same weights), and keeps
// it only if it gives the same outputs as the full head. Everything here is exact or refused.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { reapplyLayers } from './cut.js';

type Layer = tfl.LayersModel['layers'][number];
type SymbolicTensor = tfl.SymbolicTensor;

/** A window of an H×W×C feature map: rows top..top+height-1, columns left..left+width-1. */
export interface FeatureCrop {
  top: number;
  left: number;
  height: number;
  width: number;
}

export interface CroppedHead {
  /** The head rebuilt on cropped inputs; shares every layer (and weight) with the full head. */
  head: tfl.LayersModel;
  /** Per head input: the window to keep, or undefined to keep the whole input. */
  crops: (FeatureCrop | undefined)[];
}

export interface FeatureCropOptions {
  /** Seed of the probe's random inputs. */
  seed?: number;
  /** Largest |full − cropped| output difference accepted (float rounding only). */
  tolerance?: number;
}

/** Copies the `crop` window of each of `n` H×W×C maps packed in `values`. */
export function cropFeatureMaps(values: Float32Array, n: number, shape: readonly number[], crop: FeatureCrop): Float32Array {
  const [h, w, c] = shape as [number, number, number];
  const out = new Float32Array(n * crop.height * crop.width * c);
  const rowLength = crop.width * c;
  let offset = 0;
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < crop.height; r++) {
      const start = ((i * h + crop.top + r) * w + crop.left) * c;
      out.set(values.subarray(start, start + rowLength), offset);
      offset += rowLength;
    }
  }
  return out;
}

const inputShapeOf = (tensor: SymbolicTensor): number[] => tensor.shape.slice(1) as number[];

/**
 * Batch statistics over a spatial map would change with the crop, so a head that normalises a
 * rank-4 tensor with batch statistics in training is never cropped.
 */
function hasSpatialTrainingBatchNorm(head: tfl.LayersModel): boolean {
  return head.layers.some((layer: Layer) => {
    if (layer.getClassName() !== 'BatchNormalization' || !layer.trainable) return false;
    const ranks = layer.inboundNodes.map((node) => node.inputTensors[0]?.shape.length ?? 0);
    return ranks.some((rank) => rank > 2);
  });
}

/** Rows and columns of each rank-4 input whose values reach the outputs (non-zero gradient). */
function usedRegions(head: tfl.LayersModel, seed: number): (FeatureCrop | undefined)[] {
  return tf.tidy(() => {
    const inputs = head.inputs.map((input, k) => tf.randomNormal([4, ...inputShapeOf(input)], 0, 1, 'float32', seed + k));
    const outputCount = head.outputs.length;
    // A random projection of the outputs: the sum of a softmax is constant, its projection is not.
    const projections = head.outputs.map((output, k) => tf.randomNormal([4, ...(output.shape.slice(1) as number[])], 0, 1, 'float32', seed + 100 + k));
    const probe = (...xs: tf.Tensor[]): tf.Scalar => {
      const predicted = head.apply(xs.length === 1 ? xs[0]! : xs, { training: false }) as tf.Tensor | tf.Tensor[];
      const outputs = Array.isArray(predicted) ? predicted : [predicted];
      return tf.addN(outputs.slice(0, outputCount).map((o, k) => tf.sum(tf.mul(o, projections[k]!)))) as tf.Scalar;
    };
    const grads = tf.grads(probe)(inputs);
    return grads.map((grad, k) => {
      const shape = inputShapeOf(head.inputs[k]!);
      if (shape.length !== 3) return undefined;
      const [h, w] = shape as [number, number, number];
      const used = tf.sum(tf.abs(grad), [0, 3]).dataSync(); // h × w
      let top = h, bottom = -1, left = w, right = -1;
      for (let r = 0; r < h; r++) {
        for (let c = 0; c < w; c++) {
          if (used[r * w + c]! === 0) continue;
          top = Math.min(top, r);
          bottom = Math.max(bottom, r);
          left = Math.min(left, c);
          right = Math.max(right, c);
        }
      }
      if (bottom < 0) return undefined; // nothing reached the output: leave it alone
      const crop = { top, left, height: bottom - top + 1, width: right - left + 1 };
      return crop.height === h && crop.width === w ? undefined : crop;
    });
  });
}

/** Largest |a − b| over the head's outputs for the same random features, full vs cropped. */
function largestDifference(head: tfl.LayersModel, cropped: CroppedHead, seed: number): number {
  return tf.tidy(() => {
    const full = head.inputs.map((input, k) => tf.randomNormal([4, ...inputShapeOf(input)], 0, 2, 'float32', seed + k));
    const cut = full.map((x, k) => {
      const crop = cropped.crops[k];
      return crop ? tf.slice(x, [0, crop.top, crop.left, 0], [-1, crop.height, crop.width, -1]) : x;
    });
    const asList = (y: tf.Tensor | tf.Tensor[]): tf.Tensor[] => (Array.isArray(y) ? y : [y]);
    const a = asList(head.apply(full.length === 1 ? full[0]! : full, { training: false }) as tf.Tensor | tf.Tensor[]);
    const b = asList(cropped.head.apply(cut.length === 1 ? cut[0]! : cut, { training: false }) as tf.Tensor | tf.Tensor[]);
    if (a.length !== b.length) return Infinity;
    return Math.max(...a.map((x, i) => (x.shape.join() === b[i]!.shape.join() ? tf.max(tf.abs(tf.sub(x, b[i]!))).dataSync()[0]! : Infinity)));
  });
}

/**
 * The head rebuilt on the part of its inputs that can reach its outputs, or undefined when every
 * input is used whole (most heads: global average pooling reads the whole map), when the head
 * normalises a spatial map with batch statistics, or when the rebuilt head does not reproduce the
 * full head's outputs.
 */
export function cropHeadToUsedRegion(head: tfl.LayersModel, options: FeatureCropOptions = {}): CroppedHead | undefined {
  const seed = options.seed ?? 1;
  if (hasSpatialTrainingBatchNorm(head)) return undefined;
  const crops = usedRegions(head, seed);
  if (crops.every((crop) => crop === undefined)) return undefined;
  let rebuilt: tfl.LayersModel;
  try {
    const inputs = head.inputs.map((input, k) => {
      const crop = crops[k];
      const [h, w, c] = inputShapeOf(input) as [number, number, number];
      return tfl.input({ shape: crop ? [crop.height, crop.width, c] : [h, w, c], name: `${input.name.replace(/[:/]/g, '_')}_crop${k}` });
    });
    rebuilt = reapplyLayers(head, inputs, `${head.name}_cropped`);
  } catch {
    return undefined; // e.g. a Flatten whose size the crop changes: the crop is not a drop-in
  }
  const cropped = { head: rebuilt, crops };
  const difference = largestDifference(head, cropped, seed + 7);
  return difference <= (options.tolerance ?? 1e-5) ? cropped : undefined;
}
