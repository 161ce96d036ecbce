// TensorFlow.js set-up for Node, done once per process: the wasm backend (the engine),
// its thread count, and the kernels we add or replace (see kernels/).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

export interface EngineInfo {
  backend: string;
  threads: number;
}

export interface EngineOptions {
  /** 'wasm' (default) or 'cpu' (pure JS; only a reference for gradient tests). */
  backend?: 'wasm' | 'cpu';
}

let ready: Promise<EngineInfo> | undefined;

export function initEngine(options: EngineOptions = {}): Promise<EngineInfo> {
  ready ??= setUp(options.backend ?? 'wasm');
  return ready;
}

async function setUp(backend: 'wasm' | 'cpu'): Promise<EngineInfo> {
  const ok = await tf.setBackend(backend);
  if (!ok) throw new Error(`TensorFlow.js backend "${backend}" failed to initialise`);
  await tf.ready();
  return { backend, threads: 1 };
}

export { tf };
