// Conv2D gradients on wasm as plain convolutions, so that XNNPACK does the arithmetic:
// - the filter gradient (missing on wasm) is a convolution of the input, batch and channels
//   swapped, with the output gradient as the filter, dilated by the stride;
// - the input gradient (on wasm a naive loop at ~2 GFLOP/s) is a convolution of the output gradient,
//   spread out by the stride, with the filter flipped in space and its channel axes swapped.
import { backend_util, Conv2DBackpropFilter, Conv2DBackpropInput } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { cropHW, dilateHW, explicitPad, fitAxis, release, reshape, flipSpatial, run, transpose, type WasmBackendLike } from './wasm_ops.js';

type Pad = 'valid' | 'same' | number | backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Shape4 = [number, number, number, number];

function channelsLastInfo(kernel: string, xShape: Shape4, filterShape: Shape4, attrs: NamedAttrMap): backend_util.Conv2DInfo {
  const format = backend_util.convertConv2DDataFormat((attrs['dataFormat'] as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC');
  if (format !== 'channelsLast') throw new Error(`${kernel} on wasm supports only dataFormat NHWC`);
  return backend_util.computeConv2DInfo(xShape, filterShape, attrs['strides'] as number | [number, number], 1,
    attrs['pad'] as Pad, attrs['dimRoundingMode'] as Rounding, false, format);
}

/**
 * A 1×1 convolution with stride 1 and no padding is a matrix product over the pixels, and
 * XNNPACK's matmul is several times faster than the strided/dilated convolution used below
 * (MobileNet's pointwise layers and ResNet's 1×1 convolutions spend most of their backward here).
 */
function isPointwise(info: backend_util.Conv2DInfo): boolean {
  const p = info.padInfo;
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 && info.strideWidth === 1 &&
    info.dilationHeight === 1 && info.dilationWidth === 1 && p.top === 0 && p.bottom === 0 && p.left === 0 && p.right === 0;
}

function matmul(b: WasmBackendLike, a: TensorInfo, c: TensorInfo): TensorInfo {
  return run(b, 'BatchMatMul', { a, b: c }, { transposeA: false, transposeB: false });
}

/** dW[0,0,ci,co] = Σ_pixels x[p, ci] · dy[p, co]: (xᵀ · dy). */
function pointwiseFilterGrad(b: WasmBackendLike, x: TensorInfo, dy: TensorInfo): TensorInfo {
  const [n, h, w, ci] = x.shape as Shape4;
  const co = dy.shape[3]!;
  const pixels = n * h * w;
  const x2 = reshape(b, x, [1, pixels, ci]);
  const xT = transpose(b, x2, [0, 2, 1]);
  const dy2 = reshape(b, dy, [1, pixels, co]);
  const product = matmul(b, xT, dy2);
  const dW = reshape(b, product, [1, 1, ci, co]);
  release(b, x2, xT, dy2, product);
  return dW;
}

/** dx[p, ci] = Σ_co dy[p, co] · W[ci, co]: (dy · Wᵀ). */
function pointwiseInputGrad(b: WasmBackendLike, dy: TensorInfo, filter: TensorInfo, inputShape: Shape4): TensorInfo {
  const [, , ci, co] = filter.shape as Shape4;
  const pixels = inputShape[0] * inputShape[1] * inputShape[2];
  const dy2 = reshape(b, dy, [1, pixels, co]);
  const w2 = reshape(b, filter, [1, ci, co]);
  const wT = transpose(b, w2, [0, 2, 1]);
  const product = matmul(b, dy2, wT);
  const dx = reshape(b, product, inputShape);
  release(b, dy2, w2, wT, product);
  return dx;
}

export function conv2DBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: WasmBackendLike; attrs: NamedAttrMap }): TensorInfo {
  const { inputs: { x, dy }, backend: b, attrs } = args;
  const info = channelsLastInfo(Conv2DBackpropFilter, x.shape as Shape4, attrs['filterShape'] as Shape4, attrs);
  if (isPointwise(info)) return pointwiseFilterGrad(b, x, dy);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight, outWidth, inHeight, inWidth } = info;
  // dW[i,j,ci,co] = Σ_{n,oh,ow} x[n, oh·sh + i − top, ow·sw + j − left, ci] · dy[n, oh, ow, co]
  const h = fitAxis(inHeight, info.padInfo.top, (outHeight - 1) * sh + 1, kh);
  const w = fitAxis(inWidth, info.padInfo.left, (outWidth - 1) * sw + 1, kw);
  const xCropped = cropHW(b, x, h, w);
  const xSwapped = transpose(b, xCropped, [3, 1, 2, 0]); // [ci, H, W, n]
  const dyFilter = transpose(b, dy, [1, 2, 0, 3]); // [oh, ow, n, co]
  const grad = run(b, 'Conv2D', { x: xSwapped, filter: dyFilter }, {
    strides: [1, 1], pad: explicitPad(h, w), dataFormat: 'NHWC', dilations: [sh, sw],
  }); // [ci, kh, kw, co]
  const dW = transpose(b, grad, [1, 2, 0, 3]);
  release(b, xSwapped, dyFilter, grad);
  if (xCropped !== x) release(b, xCropped);
  return dW;
}

export function conv2DBackpropInput(args: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: WasmBackendLike; attrs: NamedAttrMap }): TensorInfo {
  const { inputs: { dy, filter }, backend: b, attrs } = args;
  const info = channelsLastInfo(Conv2DBackpropInput, attrs['inputShape'] as Shape4, filter.shape as Shape4, attrs);
  if (isPointwise(info)) return pointwiseInputGrad(b, dy, filter, attrs['inputShape'] as Shape4);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight, outWidth, inHeight, inWidth } = info;
  // dx[n,y,x,ci] = Σ_{i,j,co} dyDilated[n, y − (kh−1−top) + i, x − (kw−1−left) + j, co] · W[kh−1−i, kw−1−j, ci, co]
  const spread = dilateHW(b, dy, sh, sw);
  const h = fitAxis(outHeight * sh, kh - 1 - info.padInfo.top, kh, inHeight);
  const w = fitAxis(outWidth * sw, kw - 1 - info.padInfo.left, kw, inWidth);
  const cropped = cropHW(b, spread, h, w);
  const flipped = flipSpatial(b, filter);
  const flippedT = transpose(b, flipped, [0, 1, 3, 2]); // [kh, kw, co, ci]
  const dx = run(b, 'Conv2D', { x: cropped, filter: flippedT }, {
    strides: [1, 1], pad: explicitPad(h, w), dataFormat: 'NHWC', dilations: [1, 1],
  });
  release(b, flipped, flippedT);
  if (cropped !== spread) release(b, cropped);
  if (spread !== dy) release(b, spread);
  return dx;
}

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as KernelFunc,
};

export const conv2DBackpropInputConfig: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput as unknown as KernelFunc,
};
