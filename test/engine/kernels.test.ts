// Every kernel we add to or replace in the wasm backend, against the cpu backend.
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine, tf } from '../../src/engine/index.js';
import { wasmKernel, type WasmBackendLike } from '../../src/engine/kernels/wasm_ops.js';
import { randomValues, relativeError, wasmVsCpu } from './reference.js';

const TOLERANCE = 1e-4;

beforeAll(async () => {
  await initEngine();
});

function outSize(inSize: number, k: number, stride: number, pad: 'same' | 'valid'): number {
  return pad === 'same' ? Math.ceil(inSize / stride) : Math.ceil((inSize - k + 1) / stride);
}

interface ConvCase { n: number; h: number; w: number; ci: number; co: number; k: number; stride: number; pad: 'same' | 'valid' }

const convCases: ConvCase[] = [
  { n: 2, h: 9, w: 9, ci: 3, co: 4, k: 3, stride: 1, pad: 'same' },
  { n: 2, h: 9, w: 8, ci: 3, co: 4, k: 3, stride: 2, pad: 'same' },
  { n: 1, h: 10, w: 10, ci: 2, co: 3, k: 3, stride: 2, pad: 'valid' },
  { n: 2, h: 7, w: 7, ci: 4, co: 5, k: 1, stride: 1, pad: 'valid' },
  { n: 1, h: 8, w: 8, ci: 4, co: 6, k: 1, stride: 2, pad: 'same' },
  { n: 1, h: 15, w: 13, ci: 3, co: 4, k: 7, stride: 2, pad: 'same' },
  { n: 1, h: 12, w: 12, ci: 2, co: 3, k: 7, stride: 1, pad: 'valid' },
];

const name = (c: ConvCase): string => `${c.n}x${c.h}x${c.w}x${c.ci}→${c.co} k${c.k} s${c.stride} ${c.pad}`;

describe('Conv2DBackpropFilter on wasm', () => {
  it.each(convCases)('matches cpu: $k×$k stride $stride $pad (%#)', async (c) => {
    const oh = outSize(c.h, c.k, c.stride, c.pad);
    const ow = outSize(c.w, c.k, c.stride, c.pad);
    const { wasm, cpu } = await wasmVsCpu('Conv2DBackpropFilter', {
      x: { shape: [c.n, c.h, c.w, c.ci], values: randomValues([c.n, c.h, c.w, c.ci], 1) },
      dy: { shape: [c.n, oh, ow, c.co], values: randomValues([c.n, oh, ow, c.co], 2) },
    }, { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: [c.k, c.k, c.ci, c.co] });
    expect(wasm.shape, name(c)).toEqual([c.k, c.k, c.ci, c.co]);
    expect(relativeError(wasm.values, cpu.values), name(c)).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe('Conv2DBackpropInput on wasm', () => {
  it.each(convCases)('matches cpu: $k×$k stride $stride $pad (%#)', async (c) => {
    const oh = outSize(c.h, c.k, c.stride, c.pad);
    const ow = outSize(c.w, c.k, c.stride, c.pad);
    const { wasm, cpu } = await wasmVsCpu('Conv2DBackpropInput', {
      dy: { shape: [c.n, oh, ow, c.co], values: randomValues([c.n, oh, ow, c.co], 3) },
      filter: { shape: [c.k, c.k, c.ci, c.co], values: randomValues([c.k, c.k, c.ci, c.co], 4) },
    }, { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', inputShape: [c.n, c.h, c.w, c.ci] });
    expect(wasm.shape, name(c)).toEqual([c.n, c.h, c.w, c.ci]);
    expect(relativeError(wasm.values, cpu.values), name(c)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('also takes a numeric padding', async () => {
    const { wasm, cpu } = await wasmVsCpu('Conv2DBackpropInput', {
      dy: { shape: [1, 5, 5, 2], values: randomValues([1, 5, 5, 2], 5) },
      filter: { shape: [3, 3, 3, 2], values: randomValues([3, 3, 3, 2], 6) },
    }, { strides: 2, pad: 1, dataFormat: 'NHWC', inputShape: [1, 9, 9, 3] });
    expect(relativeError(wasm.values, cpu.values)).toBeLessThanOrEqual(TOLERANCE);
  });
});

interface DepthwiseCase { h: number; w: number; c: number; m: number; k: number; stride: number; pad: 'same' | 'valid' }

const depthwiseCases: DepthwiseCase[] = [
  { h: 8, w: 8, c: 3, m: 1, k: 3, stride: 1, pad: 'same' },
  { h: 9, w: 9, c: 3, m: 1, k: 3, stride: 2, pad: 'same' },
  { h: 9, w: 8, c: 2, m: 2, k: 3, stride: 2, pad: 'valid' },
  { h: 7, w: 7, c: 4, m: 2, k: 3, stride: 1, pad: 'valid' },
  { h: 6, w: 6, c: 3, m: 2, k: 1, stride: 1, pad: 'same' },
  { h: 11, w: 11, c: 2, m: 1, k: 7, stride: 2, pad: 'same' },
];

describe('DepthwiseConv2dNative gradients on wasm', () => {
  it.each(depthwiseCases)('filter gradient matches cpu: $k×$k stride $stride $pad multiplier $m (%#)', async (c) => {
    const n = 2;
    const oh = outSize(c.h, c.k, c.stride, c.pad);
    const ow = outSize(c.w, c.k, c.stride, c.pad);
    const { wasm, cpu } = await wasmVsCpu('DepthwiseConv2dNativeBackpropFilter', {
      x: { shape: [n, c.h, c.w, c.c], values: randomValues([n, c.h, c.w, c.c], 7) },
      dy: { shape: [n, oh, ow, c.c * c.m], values: randomValues([n, oh, ow, c.c * c.m], 8) },
    }, { strides: c.stride, dilations: 1, pad: c.pad, filterShape: [c.k, c.k, c.c, c.m] });
    expect(wasm.shape).toEqual([c.k, c.k, c.c, c.m]);
    expect(relativeError(wasm.values, cpu.values)).toBeLessThanOrEqual(TOLERANCE);
  });

  it.each(depthwiseCases)('input gradient matches cpu: $k×$k stride $stride $pad multiplier $m (%#)', async (c) => {
    const n = 2;
    const oh = outSize(c.h, c.k, c.stride, c.pad);
    const ow = outSize(c.w, c.k, c.stride, c.pad);
    const { wasm, cpu } = await wasmVsCpu('DepthwiseConv2dNativeBackpropInput', {
      dy: { shape: [n, oh, ow, c.c * c.m], values: randomValues([n, oh, ow, c.c * c.m], 9) },
      filter: { shape: [c.k, c.k, c.c, c.m], values: randomValues([c.k, c.k, c.c, c.m], 10) },
    }, { strides: c.stride, dilations: 1, pad: c.pad, inputShape: [n, c.h, c.w, c.c] });
    expect(wasm.shape).toEqual([n, c.h, c.w, c.c]);
    expect(relativeError(wasm.values, cpu.values)).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe('MaxPoolGrad on wasm', () => {
  const cases = [
    { size: 2, stride: 2, pad: 'valid' as const, h: 8 },
    { size: 3, stride: 2, pad: 'same' as const, h: 9 },
    { size: 3, stride: 2, pad: 'valid' as const, h: 9 },
    { size: 3, stride: 1, pad: 'same' as const, h: 6 },
  ];
  for (const shift of [-10, 0]) {
    it.each(cases)(`matches cpu with values ${shift < 0 ? 'all negative' : 'of both signs'}: $size×$size stride $stride $pad`, async (c) => {
      const xShape = [2, c.h, c.h, 3];
      const x = randomValues(xShape, 11, shift);
      const o = outSize(c.h, c.size, c.stride, c.pad);
      if (shift < 0) expect(Math.max(...x)).toBeLessThan(0);
      // The forward output is an input of the kernel (unused by either backend) — compute it on cpu.
      await tf.setBackend('cpu');
      const y = tf.tidy(() => tf.maxPool(tf.tensor4d(x, xShape as [number, number, number, number]), c.size, c.stride, c.pad).dataSync() as Float32Array);
      await tf.setBackend('wasm');
      const { wasm, cpu } = await wasmVsCpu('MaxPoolGrad', {
        dy: { shape: [2, o, o, 3], values: randomValues([2, o, o, 3], 12) },
        input: { shape: xShape, values: x },
        output: { shape: [2, o, o, 3], values: y },
      }, { filterSize: c.size, strides: c.stride, pad: c.pad });
      expect(wasm.shape).toEqual(xShape);
      expect(relativeError(wasm.values, cpu.values)).toBeLessThanOrEqual(TOLERANCE);
    });
  }

  it("differs from the package's own kernel, which is wrong on all-negative windows", async () => {
    const x = randomValues([1, 4, 4, 1], 19, -10);
    const dy = randomValues([1, 2, 2, 1], 20);
    await tf.setBackend('wasm');
    const attrs = { filterSize: 2, strides: 2, pad: 'valid' };
    const backend = tf.backend() as unknown as WasmBackendLike;
    const run = (fn: ReturnType<typeof wasmKernel>): Float32Array => tf.tidy(() => {
      const input = tf.tensor4d(x, [1, 4, 4, 1]);
      const out = fn({ inputs: { dy: tf.tensor4d(dy, [1, 2, 2, 1]), input, output: tf.maxPool(input, 2, 2, 'valid') }, backend, attrs });
      const info = out as tf.TensorInfo;
      const values = backend.readSync(info.dataId) as Float32Array;
      backend.disposeData(info.dataId);
      return values;
    });
    const ours = run(tf.getKernel('MaxPoolGrad', 'wasm')!.kernelFunc as unknown as ReturnType<typeof wasmKernel>);
    const theirs = run(wasmKernel('MaxPoolGrad'));
    // Ours routes every window's gradient to one input; the package's loses it.
    expect(ours.reduce((a, b) => a + b, 0)).toBeCloseTo(dy.reduce((a, b) => a + b, 0), 4);
    expect(relativeError(theirs, ours)).toBeGreaterThan(0.1);
  });
});

describe('BatchMatMul on wasm', () => {
  const shapes = [
    { a: [1, 7, 5], b: [1, 5, 6] },
    { a: [3, 4, 9], b: [3, 9, 2] },
  ];
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      it.each(shapes)(`matches cpu with transposeA=${transposeA} transposeB=${transposeB} (%#)`, async ({ a, b }) => {
        const swap = (s: number[]): number[] => [s[0]!, s[2]!, s[1]!];
        const aShape = transposeA ? swap(a) : a;
        const bShape = transposeB ? swap(b) : b;
        const { wasm, cpu } = await wasmVsCpu('BatchMatMul', {
          a: { shape: aShape, values: randomValues(aShape, 13) },
          b: { shape: bShape, values: randomValues(bShape, 14) },
        }, { transposeA, transposeB });
        expect(wasm.shape).toEqual([a[0], a[1], b[2]]);
        expect(relativeError(wasm.values, cpu.values)).toBeLessThanOrEqual(TOLERANCE);
      });
    }
  }
});

describe('gradient kernels wasm already had', () => {
  it('AvgPoolGrad matches cpu', async () => {
    const { wasm, cpu } = await wasmVsCpu('AvgPoolGrad', {
      dy: { shape: [2, 4, 4, 3], values: randomValues([2, 4, 4, 3], 15) },
      input: { shape: [2, 8, 8, 3], values: randomValues([2, 8, 8, 3], 16) },
    }, { filterSize: 3, strides: 2, pad: 'same' });
    expect(relativeError(wasm.values, cpu.values)).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe('our kernels', () => {
  it('leak no tensor memory on wasm', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor4d(randomValues([1, 9, 9, 2], 17), [1, 9, 9, 2]);
    const f = tf.tensor4d(randomValues([3, 3, 2, 2], 18), [3, 3, 2, 2]);
    const run = (): void => {
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.maxPool(tf.depthwiseConv2d(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), b as tf.Tensor4D, 1, 'same'), 2, 2, 'valid')));
      tf.dispose(grads([x, f]));
    };
    run();
    const tensors = tf.memory().numTensors;
    const buffers = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    run();
    expect(tf.memory().numTensors).toBe(tensors);
    expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(buffers);
    tf.dispose([x, f]);
  });
});
