// The kernels we add to (or replace in) the wasm backend. Registered once per process, after the
// backend is initialised (the package's kernels we call need their set-up done by then).
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { batchMatMulConfig } from './batch_matmul.js';
import { conv2DBackpropFilterConfig, conv2DBackpropInputConfig } from './conv2d_backprop.js';
import { depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig } from './depthwise_backprop.js';
import { maxPoolGradConfig } from './max_pool_grad.js';
import { keepOriginal } from './wasm_ops.js';

/** Kernels wasm lacks. */
const added: KernelConfig[] = [conv2DBackpropFilterConfig, depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig];
/** Kernels wasm has but gets wrong (MaxPoolGrad) or slow (the others). */
const replaced: KernelConfig[] = [maxPoolGradConfig, conv2DBackpropInputConfig, batchMatMulConfig];

/** Names of the kernels ours provide on wasm. */
export const wasmKernelNames: readonly string[] = [...added, ...replaced].map((k) => k.kernelName);

/** Registers our wasm kernels; safe to call more than once. */
export function registerWasmKernels(): void {
  for (const config of [...added, ...replaced]) {
    const current = tf.getKernel(config.kernelName, 'wasm');
    if (current?.kernelFunc === config.kernelFunc) continue;
    if (current) {
      keepOriginal(config.kernelName);
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    tf.registerKernel(config);
  }
}
