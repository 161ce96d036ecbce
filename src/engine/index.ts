// TensorFlow.js set-up for Node, done once per process: the wasm backend (the engine),
// its thread count (threads.ts), and the kernels we add or replace (kernels/).
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's Node bundle registers no gradients (only the union package @tensorflow/tfjs does);
// tfjs-layers' bundle registers all of them, so training works once the engine is imported.
// (Chained ops such as x.square() are not registered either: use the functions, tf.square(x).)
import '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import { registerWasmKernels, wasmKernelNames } from './kernels/index.js';
import { startWasm } from './threads.js';
import { registerGradients } from './gradients.js';

export interface EngineInfo {
  backend: string;
  /** Threads the backend really computes with (1 for cpu). */
  threads: number;
  /** Kernels of ours registered on the wasm backend (added or replacing the package's). */
  kernels: readonly string[];
  /** Why the engine runs with less than asked for (e.g. fewer threads), if it does. */
  warnings: readonly string[];
}

export interface EngineOptions {
  /** 'wasm' (default) or 'cpu' (pure JS; only a reference for gradient tests). */
  backend?: 'wasm' | 'cpu';
  /** wasm threads; default: env POCOVID_THREADS, else every logical core. */
  threads?: number;
}

const MAX_THREADS = 64;

/** The thread count to ask for: the option, else POCOVID_THREADS, else every logical core. */
export function resolveThreads(option?: number, env: NodeJS.ProcessEnv = process.env): number {
  if (option !== undefined) {
    if (!Number.isInteger(option) || option < 1 || option > MAX_THREADS) {
      throw new PocovidError(`threads must be an integer from 1 to ${MAX_THREADS}, got ${option}`);
    }
    return option;
  }
  const fromEnv = env['POCOVID_THREADS'];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
      throw new PocovidError(`POCOVID_THREADS must be an integer from 1 to ${MAX_THREADS}, got "${fromEnv}"`);
    }
    return n;
  }
  return Math.min(MAX_THREADS, Math.max(1, os.availableParallelism()));
}

let ready: Promise<EngineInfo> | undefined;
let info: EngineInfo | undefined;

/**
 * Sets up TensorFlow.js once per process and makes the chosen backend the active one. Later calls
 * return the first call's result whatever their options (threads cannot change once started).
 */
export function initEngine(options: EngineOptions = {}): Promise<EngineInfo> {
  ready ??= setUp(options).then((result) => (info = result));
  return ready;
}

/** What initEngine set up; undefined before it has finished. */
export function engineInfo(): EngineInfo | undefined {
  return info;
}

async function setUp(options: EngineOptions): Promise<EngineInfo> {
  const backend = options.backend ?? 'wasm';
  registerGradients();
  if (backend === 'cpu') {
    const ok = await tf.setBackend('cpu');
    if (!ok) throw new PocovidError('TensorFlow.js backend "cpu" failed to initialise');
    return { backend, threads: 1, kernels: [], warnings: [] };
  }
  if (backend !== 'wasm') throw new PocovidError(`unknown engine backend "${String(backend)}"; valid: wasm, cpu`);
  const started = await startWasm(resolveThreads(options.threads));
  registerWasmKernels();
  const warnings = started.warning ? [started.warning] : [];
  for (const warning of warnings) process.emitWarning(warning, { code: 'POCOVID_ENGINE' });
  return { backend, threads: started.threads, kernels: wasmKernelNames, warnings };
}

export { registerWasmKernels, wasmKernelNames };
export { tf };
