// Depthwise-convolution gradients, missing on wasm.
// - Input gradient: per channel multiplier m, a depthwise convolution of the output gradient
//   (spread out by the stride) with the filter flipped in space; the multipliers are summed.
// - Filter gradient: for each filter tap (i, j), the input shifted by the tap and subsampled by
//   the stride, times the output gradient, summed over batch and positions. A depthwise filter
//   has few taps, so kh·kw element-wise passes cost about what the direct sum costs.
import { backend_util, DepthwiseConv2dNativeBackpropFilter, DepthwiseConv2dNativeBackpropInput } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { add, cropHW, dilateHW, explicitPad, fitAxis, pad, release, reshape, reverse, run, slice, type WasmBackendLike } from './wasm_ops.js';

type Pad = 'valid' | 'same' | number | backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Shape4 = [number, number, number, number];

function depthwiseInfo(xShape: Shape4, filterShape: Shape4, attrs: NamedAttrMap): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(xShape, filterShape, attrs['strides'] as number | [number, number],
    (attrs['dilations'] as number | [number, number] | undefined) ?? 1, attrs['pad'] as Pad,
    attrs['dimRoundingMode'] as Rounding, true);
}

export function depthwiseBackpropInput(args: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: WasmBackendLike; attrs: NamedAttrMap }): TensorInfo {
  const { inputs: { dy, filter }, backend: b, attrs } = args;
  const info = depthwiseInfo(attrs['inputShape'] as Shape4, filter.shape as Shape4, attrs);
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, outHeight, outWidth, inHeight, inWidth } = info;
  const [kh, kw, channels, multiplier] = filter.shape as Shape4;
  const [n] = dy.shape as Shape4;
  const h = fitAxis(outHeight * sh, (kh - 1) * dh - info.padInfo.top, (kh - 1) * dh + 1, inHeight);
  const w = fitAxis(outWidth * sw, (kw - 1) * dw - info.padInfo.left, (kw - 1) * dw + 1, inWidth);
  const flipped = reverse(b, filter, [0, 1]);
  const dy5 = reshape(b, dy, [n, outHeight, outWidth, channels, multiplier]);
  let dx: TensorInfo | undefined;
  for (let m = 0; m < multiplier; m++) {
    // This multiplier's slice of the output gradient and of the (flipped) filter.
    const dyM5 = slice(b, dy5, [0, 0, 0, 0, m], [n, outHeight, outWidth, channels, 1]);
    const dyM = reshape(b, dyM5, [n, outHeight, outWidth, channels]);
    const filterM = slice(b, flipped, [0, 0, 0, m], [kh, kw, channels, 1]);
    const spread = dilateHW(b, dyM, sh, sw);
    const cropped = cropHW(b, spread, h, w);
    const part = run(b, 'DepthwiseConv2dNative', { x: cropped, filter: filterM }, {
      strides: [1, 1], pad: explicitPad(h, w), dataFormat: 'NHWC', dilations: [dh, dw],
    });
    if (cropped !== spread) release(b, cropped);
    if (spread !== dyM) release(b, spread);
    release(b, dyM5, dyM, filterM);
    if (dx === undefined) {
      dx = part;
    } else {
      const sum = add(b, dx, part);
      release(b, dx, part);
      dx = sum;
    }
  }
  release(b, flipped, dy5);
  return dx!;
}

export function depthwiseBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: WasmBackendLike; attrs: NamedAttrMap }): TensorInfo {
  const { inputs: { x, dy }, backend: b, attrs } = args;
  const filterShape = attrs['filterShape'] as Shape4;
  const info = depthwiseInfo(x.shape as Shape4, filterShape, attrs);
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, outHeight, outWidth, inHeight, inWidth } = info;
  const [kh, kw, channels, multiplier] = filterShape;
  const [n] = x.shape as Shape4;
  // Pad the input so that every tap's subsampled window lies inside it.
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const bottom = Math.max(0, (kh - 1) * dh + (outHeight - 1) * sh + 1 - inHeight - top);
  const right = Math.max(0, (kw - 1) * dw + (outWidth - 1) * sw + 1 - inWidth - left);
  const padded = top + bottom + left + right > 0 ? pad(b, x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
  const dy5 = reshape(b, dy, [n, outHeight, outWidth, channels, multiplier]);
  const taps: TensorInfo[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const shifted = run(b, 'StridedSlice', { x: padded }, {
        begin: [0, i * dh, j * dw, 0],
        end: [n, i * dh + (outHeight - 1) * sh + 1, j * dw + (outWidth - 1) * sw + 1, channels],
        strides: [1, sh, sw, 1], beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0,
      }); // [n, oh, ow, c]
      const shifted5 = reshape(b, shifted, [n, outHeight, outWidth, channels, 1]);
      const product = run(b, 'Multiply', { a: shifted5, b: dy5 });
      taps.push(run(b, 'Sum', { x: product }, { axis: [0, 1, 2], keepDims: false })); // [c, m]
      release(b, shifted, shifted5, product);
    }
  }
  const stacked = run(b, 'Concat', taps, { axis: 0 }); // [kh·kw·c, m]
  const dW = reshape(b, stacked, filterShape);
  release(b, stacked, dy5, ...taps);
  if (padded !== x) release(b, padded);
  return dW;
}

export const depthwiseBackpropInputConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropInput as unknown as KernelFunc,
};

export const depthwiseBackpropFilterConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropFilter as unknown as KernelFunc,
};
