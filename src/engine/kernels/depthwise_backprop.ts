// Depthwise-convolution gradients, missing on wasm.
// - Input gradient: per channel multiplier m, a depthwise convolution of the output gradient
//   (spread out by the stride) with the filter flipped in space; the multipliers are summed.
// - Filter gradient: a direct sum in JS over taps × batch × positions with the channels innermost
//   (contiguous). Measured faster than every composition of wasm kernels tried: element-wise
//   passes per tap (~8×: the 5-D reduction transposes), or one depthwise conv with the output
//   gradient as a huge filter (~3×: XNNPACK has no fast path for such filters).
import { backend_util, DepthwiseConv2dNativeBackpropFilter, DepthwiseConv2dNativeBackpropInput } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { add, cropHW, dilateHW, explicitPad, fitAxis, release, reshape, flipSpatial, run, slice, type WasmBackendLike } from './wasm_ops.js';

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
  const flipped = flipSpatial(b, filter);
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
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const xs = b.readSync(x.dataId) as Float32Array;
  const gs = b.readSync(dy.dataId) as Float32Array;
  const outChannels = channels * multiplier;
  // Accumulate in float64: sums run over batch × positions and float32 would drift on big images.
  const acc = new Float64Array(kh * kw * outChannels);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const tap = (i * kw + j) * outChannels;
      for (let bn = 0; bn < n; bn++) {
        for (let oy = 0; oy < outHeight; oy++) {
          const yy = oy * sh + i * dh - top;
          if (yy < 0 || yy >= inHeight) continue;
          for (let ox = 0; ox < outWidth; ox++) {
            const xx = ox * sw + j * dw - left;
            if (xx < 0 || xx >= inWidth) continue;
            const xAt = ((bn * inHeight + yy) * inWidth + xx) * channels;
            const gAt = ((bn * outHeight + oy) * outWidth + ox) * outChannels;
            if (multiplier === 1) {
              for (let k = 0; k < outChannels; k++) acc[tap + k] += xs[xAt + k]! * gs[gAt + k]!;
            } else {
              // Filter layout [kh, kw, c, m] flattens to the output-channel order c·m + m'.
              for (let c = 0, k = 0; c < channels; c++) {
                const v = xs[xAt + c]!;
                for (let m = 0; m < multiplier; m++, k++) acc[tap + k] += v * gs[gAt + k]!;
              }
            }
          }
        }
      }
    }
  }
  const dW = b.makeOutput(filterShape, 'float32');
  b.typedArrayFromHeap(dW).set(acc);
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
