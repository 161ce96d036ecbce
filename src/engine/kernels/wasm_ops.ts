// Running existing wasm kernels from inside our own kernels. Kernels compose kernels (not tf ops),
// so nothing lands on the gradient tape or in the engine's scopes: every intermediate TensorInfo
// made here must be released with `release`.
import * as tf from '@tensorflow/tfjs-core';
import type { NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

/** The parts of the wasm backend our kernels use. */
export interface WasmBackendLike {
  disposeData(dataId: object, force?: boolean): boolean;
  readSync(dataId: object): Float32Array | Int32Array | Uint8Array;
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type KernelFn = (args: { inputs: NamedTensorInfoMap | TensorInfo[]; backend: unknown; attrs: NamedAttrMap }) => TensorInfo | TensorInfo[];

const originals = new Map<string, KernelFn>();

/** Remembers the wasm package's own kernel before we replace it, so that ours can still call it. */
export function keepOriginal(kernelName: string): void {
  if (originals.has(kernelName)) return;
  const config = tf.getKernel(kernelName, 'wasm');
  if (!config) throw new Error(`wasm backend has no kernel ${kernelName}`);
  originals.set(kernelName, config.kernelFunc as unknown as KernelFn);
}

/** The wasm package's kernel `kernelName` (its original when we replaced it). */
export function wasmKernel(kernelName: string): KernelFn {
  const kept = originals.get(kernelName);
  if (kept) return kept;
  const config = tf.getKernel(kernelName, 'wasm');
  if (!config) throw new Error(`wasm backend has no kernel ${kernelName}`);
  return config.kernelFunc as unknown as KernelFn;
}

export function run(backend: WasmBackendLike, kernelName: string, inputs: NamedTensorInfoMap | TensorInfo[], attrs: NamedAttrMap = {}): TensorInfo {
  const out = wasmKernel(kernelName)({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`kernel ${kernelName} returned several outputs`);
  return out;
}

export function release(backend: WasmBackendLike, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

export const transpose = (b: WasmBackendLike, x: TensorInfo, perm: number[]): TensorInfo => run(b, 'Transpose', { x }, { perm });
export const reshape = (b: WasmBackendLike, x: TensorInfo, shape: number[]): TensorInfo => run(b, 'Reshape', { x }, { shape });
export const slice = (b: WasmBackendLike, x: TensorInfo, begin: number[], size: number[]): TensorInfo => run(b, 'Slice', { x }, { begin, size });
export const pad = (b: WasmBackendLike, x: TensorInfo, paddings: Array<[number, number]>): TensorInfo =>
  run(b, 'PadV2', { x }, { paddings, constantValue: 0 });
export const reverse = (b: WasmBackendLike, x: TensorInfo, dims: number[]): TensorInfo => run(b, 'Reverse', { x }, { dims });

/**
 * A [kh, kw, …] float32 filter flipped in both spatial axes. The wasm Reverse kernel walks element
 * by element (130 ms for a 3×3×512×512 filter); flipping the two leading axes only reorders
 * kh·kw contiguous blocks, which is kh·kw copies (well under 1 ms).
 */
export function flipSpatial(b: WasmBackendLike, filter: TensorInfo): TensorInfo {
  const [kh, kw] = filter.shape as [number, number];
  const block = filter.shape.slice(2).reduce((a, c) => a * c, 1);
  const out = b.makeOutput(filter.shape, 'float32');
  // Views taken after makeOutput: allocating may grow (and move) the wasm heap.
  const source = b.typedArrayFromHeap(filter) as Float32Array;
  const target = b.typedArrayFromHeap(out) as Float32Array;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const from = ((kh - 1 - i) * kw + (kw - 1 - j)) * block;
      target.set(source.subarray(from, from + block), (i * kw + j) * block);
    }
  }
  return out;
}
export const add = (b: WasmBackendLike, a: TensorInfo, c: TensorInfo): TensorInfo => run(b, 'Add', { a, b: c });

/**
 * Cropping and zero padding along one axis so that a stride-1 window of extent `window` over the
 * result gives exactly `outSize` positions, starting at offset `-padBefore` of the input.
 */
export interface AxisFit {
  cropBefore: number;
  cropAfter: number;
  padBefore: number;
  padAfter: number;
}

export function fitAxis(inSize: number, padBefore: number, window: number, outSize: number): AxisFit {
  const padAfter = outSize + window - 1 - inSize - padBefore;
  return {
    cropBefore: Math.max(0, -padBefore),
    cropAfter: Math.max(0, -padAfter),
    padBefore: Math.max(0, padBefore),
    padAfter: Math.max(0, padAfter),
  };
}

/** Crops an NHWC tensor as `fitAxis` says for H and W; returns `x` itself when nothing is cropped. */
export function cropHW(b: WasmBackendLike, x: TensorInfo, h: AxisFit, w: AxisFit): TensorInfo {
  if (h.cropBefore + h.cropAfter + w.cropBefore + w.cropAfter === 0) return x;
  const [n, height, width, c] = x.shape as [number, number, number, number];
  return slice(b, x, [0, h.cropBefore, w.cropBefore, 0],
    [n, height - h.cropBefore - h.cropAfter, width - w.cropBefore - w.cropAfter, c]);
}

/** The explicit-padding attribute of Conv2D / DepthwiseConv2dNative for the positive pads of `fitAxis`. */
export function explicitPad(h: AxisFit, w: AxisFit): [[number, number], [number, number], [number, number], [number, number]] {
  return [[0, 0], [h.padBefore, h.padAfter], [w.padBefore, w.padAfter], [0, 0]];
}

/**
 * Spreads the rows and columns of an NHWC tensor `stride` apart with zeros between (and stride-1
 * zeros after the last): the input of a transposed convolution written as a plain one.
 */
export function dilateHW(b: WasmBackendLike, x: TensorInfo, sh: number, sw: number): TensorInfo {
  if (sh === 1 && sw === 1) return x;
  const [n, height, width, c] = x.shape as [number, number, number, number];
  const split = reshape(b, x, [n, height, 1, width, 1, c]);
  const padded = pad(b, split, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  const out = reshape(b, padded, [n, height * sh, width * sw, c]);
  release(b, split, padded);
  return out;
}
