// BatchMatMul with transposeA / transposeB runs at 1–2 GFLOP/s on wasm (against ~28 without): the
// gradients of every dense layer hit it. Transposing the operand explicitly and multiplying plainly
// is much faster; the plain case goes straight to the package's kernel.
import { BatchMatMul } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { release, run, transpose, type WasmBackendLike } from './wasm_ops.js';

/** Swaps the last two axes. */
function swapInner(b: WasmBackendLike, x: TensorInfo): TensorInfo {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return transpose(b, x, perm);
}

export function batchMatMul(args: { inputs: { a: TensorInfo; b: TensorInfo }; backend: WasmBackendLike; attrs: NamedAttrMap }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const transposeA = attrs['transposeA'] === true;
  const transposeB = attrs['transposeB'] === true;
  const a = transposeA ? swapInner(backend, inputs.a) : inputs.a;
  const b = transposeB ? swapInner(backend, inputs.b) : inputs.b;
  const out = run(backend, BatchMatMul, { a, b }, { transposeA: false, transposeB: false });
  if (a !== inputs.a) release(backend, a);
  if (b !== inputs.b) release(backend, b);
  return out;
}

export const batchMatMulConfig: KernelConfig = {
  kernelName: BatchMatMul,
  backendName: 'wasm',
  kernelFunc: batchMatMul as unknown as KernelFunc,
};
