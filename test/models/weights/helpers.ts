// Small models and reference computations shared by the weight tests.
import * as tfl from '@tensorflow/tfjs-layers';
import h5wasm from 'h5wasm/node';
import type { NamedTensor } from '../../../src/models/weights/tensors.js';

/** Deterministic values in (-1, 1) without Math.random: a fixed linear congruential sequence. */
export function seededValues(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

export function tensorOf(shape: number[], seed: number, offset = 0): NamedTensor {
  const data = seededValues(shape.reduce((a, b) => a * b, 1), seed);
  if (offset) for (let i = 0; i < data.length; i++) data[i] += offset;
  return { shape, data };
}

/**
 * PyTorch Conv2d semantics on one NHWC image (batch 1) with an OIHW weight: symmetric zero padding `pad`,
 * `stride`, optional bias. Written independently of TF.js as the reference.
 */
export function referenceConv(
  x: Float32Array, [h, w, c]: [number, number, number],
  weight: NamedTensor, stride: number, pad: number, bias?: Float32Array,
): { data: Float32Array; shape: [number, number, number] } {
  const [outC, inC, kh, kw] = weight.shape as [number, number, number, number];
  if (inC !== c) throw new Error('channel mismatch');
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  const out = new Float32Array(oh * ow * outC);
  for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) for (let o = 0; o < outC; o++) {
    let sum = bias ? bias[o]! : 0;
    for (let i = 0; i < inC; i++) for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) {
      const yy = y * stride + a - pad;
      const xi = xx * stride + b - pad;
      if (yy < 0 || yy >= h || xi < 0 || xi >= w) continue;
      sum += x[(yy * w + xi) * c + i]! * weight.data[((o * inC + i) * kh + a) * kw + b]!;
    }
    out[(y * ow + xx) * outC + o] = sum;
  }
  return { data: out, shape: [oh, ow, outC] };
}

/** Inference-mode BatchNorm over the last axis, PyTorch parameter names. */
export function referenceBatchNorm(
  x: Float32Array, channels: number,
  bn: { weight: Float32Array; bias: Float32Array; mean: Float32Array; variance: Float32Array }, eps: number,
): Float32Array {
  return x.map((v, k) => {
    const ch = k % channels;
    return ((v - bn.mean[ch]!) / Math.sqrt(bn.variance[ch]! + eps)) * bn.weight[ch]! + bn.bias[ch]!;
  });
}

export const relu = (x: Float32Array): Float32Array => x.map((v) => Math.max(0, v));

/** Conv (no bias) + BN with torchvision names for the BN's Keras counterpart. */
export function convBn(
  x: tfl.SymbolicTensor, name: string, bnName: string, filters: number, kernelSize: number, stride: number, pad: number,
): tfl.SymbolicTensor {
  let y = x;
  if (pad > 0) y = tfl.layers.zeroPadding2d({ padding: pad, name: `${name}_pad` }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters, kernelSize, strides: stride, padding: 'valid', useBias: false, name }).apply(y) as tfl.SymbolicTensor;
  return tfl.layers.batchNormalization({ epsilon: 1e-5, name: bnName }).apply(y) as tfl.SymbolicTensor;
}

export interface H5Layer {
  name: string;
  /** Weight names as written in the file (`weight_names`), each with its tensor. */
  weights: [string, NamedTensor][];
}

/** Writes a Keras-layout HDF5 weight file (fixed-length ASCII attribute strings as h5py writes them). */
export async function writeKerasH5(file: string, layers: H5Layer[], options: { underModelWeights?: boolean; splitLayerNames?: boolean } = {}): Promise<void> {
  await h5wasm.ready;
  const h5file = new h5wasm.File(file, 'w');
  try {
    // model.save() puts the weights under /model_weights (and the architecture in a root attribute).
    const h5 = options.underModelWeights ? h5file.create_group('model_weights') : h5file;
    if (options.underModelWeights) h5file.create_attribute('model_config', '{}');
    const fixed = (items: string[]) => `S${Math.max(1, ...items.map((s) => s.length))}`;
    const names = layers.map((l) => l.name);
    if (options.splitLayerNames && names.length > 1) {
      // As Keras does above the 64 kB attribute limit: layer_names0, layer_names1.
      const half = Math.ceil(names.length / 2);
      h5.create_attribute('layer_names0', names.slice(0, half), null, fixed(names));
      h5.create_attribute('layer_names1', names.slice(half), null, fixed(names));
    } else {
      h5.create_attribute('layer_names', names, null, fixed(names));
    }
    h5.create_attribute('keras_version', '2.2.4');
    for (const layer of layers) {
      const group = h5.create_group(layer.name);
      const weightNames = layer.weights.map(([n]) => n);
      if (weightNames.length > 0) group.create_attribute('weight_names', weightNames, null, fixed(weightNames));
      for (const [name, tensor] of layer.weights) {
        const parts = name.split('/');
        let parent = group;
        for (const part of parts.slice(0, -1)) parent = parent.keys().includes(part) ? (parent.get(part) as typeof group) : parent.create_group(part);
        parent.create_dataset({ name: parts.at(-1)!, data: tensor.data, shape: tensor.shape, dtype: '<f4' });
      }
    }
  } finally {
    h5file.close();
  }
}
