// Multi-threaded wasm backend in Node.
//
// TF.js 4.22 runs the wasm backend single-threaded in Node for three reasons, each undone here
// without touching node_modules:
//  1. the flag WASM_HAS_MULTITHREAD_SUPPORT answers false whenever IS_NODE: we set it to true;
//  2. the pthread worker is started from a `blob:` URL, which Node's Worker refuses: while the
//     backend initialises we answer URL.createObjectURL for the worker script with a real file
//     (the package's own worker script, plus a small patch so that the worker loads the main
//     Emscripten script from its file instead of from a Blob it cannot import);
//  3. the threadpool is capped at half the logical cores (os.cpus() in Node), so on a 2-core
//     machine it gets 1 thread: while the backend initialises os.cpus() reports 2 × the wanted
//     thread count.
// Workers are unref()'d afterwards so that an idle threadpool never keeps the process alive, and
// the workers Emscripten starts beyond what the threadpool takes are stand-ins (IdleWorker).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script } from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { writeFileAtomicSync } from '../util/atomic.js';
import { PocovidError } from '../errors.js';

const require = createRequire(import.meta.url);
const WASM_OUT = '@tensorflow/tfjs-backend-wasm/wasm-out/';

/** What a Node worker_threads Worker offers that we use (kept minimal to avoid DOM/Node type clashes). */
interface NodeWorkerLike {
  unref(): void;
  terminate(): unknown;
}

/** The parts of the Emscripten module of the threaded build that we reach into. */
interface EmscriptenThreadedModule {
  PThread?: { unusedWorkers: NodeWorkerLike[]; runningWorkers: NodeWorkerLike[] };
  locateFile?: (path: string, prefix: string) => string;
  mainScriptUrlOrBlob?: unknown;
}

export interface WasmStart {
  /** Threads the XNNPACK threadpool really has (reported by the wasm module itself). */
  threads: number;
  /** Why fewer threads than asked for, if so. */
  warning?: string;
}

export interface ThreadedStartOptions {
  /** Replaces the worker script's source; only for testing the fallback. */
  workerSourceOverride?: string;
  /** Give up on the threaded start after this long (ms). */
  timeoutMs?: number;
}

/** Worker script written to a file named by its content hash, so concurrent processes share it safely. */
function workerScriptPath(sourceOverride?: string): string {
  const mainScript = require.resolve(`${WASM_OUT}tfjs-backend-wasm-threaded-simd.js`);
  const original = sourceOverride ?? (require(`${WASM_OUT}tfjs-backend-wasm-threaded-simd.worker.js`) as { wasmWorkerContents: string }).wasmWorkerContents;
  // The main thread posts the Emscripten script as a Blob (made for browsers); the worker imports
  // scripts with fs.readFileSync, so give it the file the same script ships in.
  const patch = `\n;(function(){var handle=self.onmessage;self.onmessage=function(e){` +
    `if(e&&e.data&&e.data.cmd==="load"&&typeof e.data.urlOrBlob!=="string"){e.data.urlOrBlob=${JSON.stringify(mainScript)};}` +
    `return handle(e);};})();\n`;
  // The package keeps the script in a template literal, so its "\n" escapes became newlines inside
  // string literals; escape them back, as the package does before making its Blob.
  const source = original.replace(/\n/g, '\\n') + patch;
  // A worker that fails to parse would throw from an event handler and kill the process: check first.
  new Script(source, { filename: 'tfjs-backend-wasm-threaded-simd.worker.cjs' });
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const path = join(tmpdir(), `pocovid-tfjs-wasm-worker-${hash}.cjs`);
  if (!existsSync(path)) writeFileAtomicSync(path, source);
  return path;
}

function wasmModule(): EmscriptenThreadedModule {
  return (tf.backend() as unknown as { wasm: EmscriptenThreadedModule }).wasm;
}

/**
 * Stands in for the pthread workers the threadpool will never use. Emscripten starts 8 workers up
 * front whatever the thread count, each a Node isolate that loads the whole module (seconds on a
 * busy 2-core machine, ~20 MB each); the threadpool takes threads − 1 of them. These answer the
 * 'load' handshake and nothing else; they are dropped once the backend is up.
 */
class IdleWorker {
  private readonly messageListeners: Array<(data: unknown) => void> = [];
  on(event: string, listener: (data: unknown) => void): this {
    if (event === 'message') this.messageListeners.push(listener);
    return this;
  }
  postMessage(message: unknown): void {
    if ((message as { cmd?: unknown } | null)?.cmd !== 'load') return;
    setImmediate(() => {
      for (const listener of this.messageListeners) listener({ cmd: 'loaded' });
    });
  }
  ref(): void {}
  unref(): void {}
  terminate(): Promise<number> {
    return Promise.resolve(0);
  }
}

const IDLE_WORKER_URL = 'pocovid:idle-worker';
const EMSCRIPTEN_POOL_SIZE = 8;

/**
 * Runs `init` with createObjectURL, os.cpus and the global Worker patched as described at the top
 * and on IdleWorker; always restores them.
 */
async function withNodeThreadPatches<T>(workerPath: string, threads: number, init: () => Promise<T>): Promise<T> {
  const globals = globalThis as { Worker?: unknown };
  const workerBefore = globals.Worker;
  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  // Emscripten hands out its pool from the end (pop), so the last `threads` workers are real
  // (threads − 1 for the threadpool, one spare) and the first ones idle.
  const idle = Math.max(0, EMSCRIPTEN_POOL_SIZE - threads);
  let workersAsked = 0;
  URL.createObjectURL = (obj: Blob | MediaSource): string => {
    // Only the worker script's Blob has this type (the main script's is text/javascript).
    if (!(obj instanceof Blob && obj.type === 'application/javascript')) return createObjectURL(obj);
    // Called just before `new Worker(url)`, after Emscripten has set the global Worker to Node's.
    const NodeWorker = globals.Worker as new (path: string) => unknown;
    if (!(NodeWorker as { pocovidDispatch?: boolean }).pocovidDispatch) {
      const dispatch = function (path: string): unknown {
        return path === IDLE_WORKER_URL ? new IdleWorker() : new NodeWorker(path);
      };
      (dispatch as { pocovidDispatch?: boolean }).pocovidDispatch = true;
      globals.Worker = dispatch;
    }
    return workersAsked++ < idle ? IDLE_WORKER_URL : workerPath;
  };
  const realCpus = cpus();
  os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => realCpus[i % Math.max(1, realCpus.length)]!);
  try {
    return await init();
  } finally {
    URL.createObjectURL = createObjectURL;
    os.cpus = cpus;
    if (workerBefore === undefined) delete globals.Worker;
    else globals.Worker = workerBefore;
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PocovidError(`${what} did not finish in ${ms} ms; set POCOVID_THREADS=1 to run single-threaded`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function startThreaded(threads: number, options: ThreadedStartOptions): Promise<number> {
  if (typeof SharedArrayBuffer === 'undefined') throw new PocovidError('SharedArrayBuffer is not available');
  const workerPath = workerScriptPath(options.workerSourceOverride);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  setThreadsCount(threads);
  const ok = await withNodeThreadPatches(workerPath, threads, () =>
    withTimeout(tf.setBackend('wasm'), options.timeoutMs ?? 60_000, 'starting the threaded wasm backend'));
  if (!ok) throw new PocovidError('the threaded wasm backend failed to initialise');
  const module = wasmModule();
  const pthread = module.PThread;
  if (!pthread) throw new PocovidError('the wasm module has no thread support');
  // Workers started later (if the threadpool ever needs one) must also come from the file.
  const locateFile = module.locateFile;
  module.locateFile = (path, prefix) => (path.endsWith('.worker.js') ? workerPath : locateFile ? locateFile(path, prefix) : prefix + path);
  module.mainScriptUrlOrBlob = require.resolve(`${WASM_OUT}tfjs-backend-wasm-threaded-simd.js`);
  // Idle stand-ins and the spare go; a worker needed later is started from the file (above).
  for (const worker of pthread.unusedWorkers.splice(0)) void worker.terminate();
  if (pthread.runningWorkers.some((worker) => worker instanceof IdleWorker)) {
    throw new PocovidError('the wasm threadpool took a stand-in worker');
  }
  // The threadpool's threads are long-lived pthreads that Emscripten ref()'s: let the process exit anyway.
  for (const worker of pthread.runningWorkers) worker.unref();
  return getThreadsCount();
}

async function startSingle(): Promise<number> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setThreadsCount(1);
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new PocovidError('TensorFlow.js backend "wasm" failed to initialise');
  return getThreadsCount();
}

/**
 * Starts the wasm backend with `threads` threads (1 = the plain SIMD build). If the threaded start
 * fails, falls back to one thread and says why in `warning`.
 */
export async function startWasm(threads: number, options: ThreadedStartOptions = {}): Promise<WasmStart> {
  if (threads <= 1) return { threads: await startSingle() };
  let reason: string;
  try {
    const got = await startThreaded(threads, options);
    if (got >= threads) return { threads: got };
    return { threads: got, warning: `asked for ${threads} wasm threads, got ${got}` };
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err);
  }
  const warning = `multi-threaded wasm backend unavailable (${reason}); running on 1 thread`;
  return { threads: await startSingle(), warning };
}
