// MaxPoolGrad for wasm. The package's kernel starts each window's running maximum at the smallest
// POSITIVE float, so windows whose values are all ≤ 0 send their gradient to the wrong place (or
// nowhere). This one follows TensorFlow: the gradient goes to the first maximum of each window in
// row-major order, padding never wins, and overlapping windows add up. Plain JS over the wasm heap:
// one pass over the windows, cheap next to the convolutions around it.
import { backend_util, MaxPoolGrad, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './wasm_ops.js';

type Shape4 = [number, number, number, number];

export function maxPoolGrad(args: { inputs: { dy: TensorInfo; input: TensorInfo }; backend: WasmBackendLike; attrs: NamedAttrMap }): TensorInfo {
  const { inputs: { dy, input }, backend: b, attrs } = args;
  const info = backend_util.computePool2DInfo(input.shape as Shape4, attrs['filterSize'] as number | [number, number],
    attrs['strides'] as number | [number, number], 1, attrs['pad'] as 'valid' | 'same' | number,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined);
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, dilationHeight: dh, dilationWidth: dw } = info;
  const x = b.readSync(input.dataId) as Float32Array;
  const g = b.readSync(dy.dataId) as Float32Array;
  const dx = new Float32Array(util.sizeFromShape(input.shape));
  const rowX = inWidth * channels;
  const imageX = inHeight * rowX;
  const rowY = outWidth * channels;
  const imageY = outHeight * rowY;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - info.padInfo.top;
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - info.padInfo.left;
        const outBase = n * imageY + oy * rowY + ox * channels;
        for (let c = 0; c < channels; c++) {
          let best = Number.NEGATIVE_INFINITY;
          let where = -1;
          for (let wy = 0; wy < fh; wy += dh) {
            const yy = y0 + wy;
            if (yy < 0 || yy >= inHeight) continue;
            for (let wx = 0; wx < fw; wx += dw) {
              const xx = x0 + wx;
              if (xx < 0 || xx >= inWidth) continue;
              const at = n * imageX + yy * rowX + xx * channels + c;
              const v = x[at]!;
              // `where < 0`: a window of NaN or −∞ still sends its gradient somewhere, like TF's first element.
              if (v > best || where < 0) {
                best = v;
                where = at;
              }
            }
          }
          if (where >= 0) dx[where] = dx[where]! + g[outBase + c]!;
        }
      }
    }
  }
  const out = b.makeOutput(input.shape, 'float32');
  b.typedArrayFromHeap(out).set(dx);
  return out;
}

export const maxPoolGradConfig: KernelConfig = {
  kernelName: MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as KernelFunc,
};
