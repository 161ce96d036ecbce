// Helpers for comparing a kernel on wasm with the pure-JS cpu backend (the reference).
import { createRng } from '../../src/util/rng.js';
import { tf } from '../../src/engine/index.js';

export function randomValues(shape: number[], seed: number, shift = 0): Float32Array {
  const rng = createRng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: size }, () => rng.normal() + shift);
}

/** max |a − b| / max |b|: one number for "how wrong", insensitive to the scale of the values. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / Math.max(scale, 1e-12);
}

export interface KernelRun {
  shape: number[];
  values: Float32Array;
}

/** Runs one kernel on `backend` with fresh tensors made from `inputs`; disposes everything it made. */
export async function runKernelOn(backend: 'wasm' | 'cpu', kernelName: string,
  inputs: Record<string, { shape: number[]; values: Float32Array }>, attrs: Record<string, unknown>): Promise<KernelRun> {
  await tf.setBackend(backend);
  const tensors = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.values, v.shape)]));
  const out = tf.engine().runKernel(kernelName, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
  const result = { shape: out.shape, values: out.dataSync() as Float32Array };
  tf.dispose([out, ...Object.values(tensors)]);
  return result;
}

/** The kernel on wasm and on cpu; the caller asserts on the pair. */
export async function wasmVsCpu(kernelName: string, inputs: Record<string, { shape: number[]; values: Float32Array }>,
  attrs: Record<string, unknown>): Promise<{ wasm: KernelRun; cpu: KernelRun }> {
  const wasm = await runKernelOn('wasm', kernelName, inputs, attrs);
  const cpu = await runKernelOn('cpu', kernelName, inputs, attrs);
  await tf.setBackend('wasm');
  return { wasm, cpu };
}
