// Browser side of bench/browser.ts (bundled by it with esbuild; not part of the page). One runtime
// per page load, chosen by the query string, so that each measurement starts from a fresh heap and
// its own wasm threads:
//   ?runtime=tfjs-wasm|tfjs-cpu|ort-wasm&model=<folder>&seconds=<s>&threads=<n>
// It measures model load (fetch + parse + session/weights ready), the first forward pass, then the
// median batch-1 latency after warm-up, and publishes the result (or the error) on window.__bench.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-web/wasm';

/** What one page load measures (read back by bench/browser.ts). */
export interface BenchResult {
  runtime: string;
  model: string;
  crossOriginIsolated: boolean;
  threads: number;
  loadMs: number;
  firstRunMs: number;
  msPerImg: number;
  imgPerSec: number;
  runs: number;
  /** Output of the fixed input, so that the runtimes can be checked against each other. */
  probabilities: number[];
}

declare global {
  interface Window {
    __bench?: { result?: BenchResult; error?: string };
    /** Set after warm-up: the driver reads the renderer's CPU time, then calls it to start the timed runs. */
    __benchStart?: () => void;
  }
}

type Forward = (input: Float32Array) => Promise<Float32Array>;

const params = new URLSearchParams(location.search);
const runtime = params.get('runtime') ?? 'tfjs-wasm';
const modelDir = params.get('model') ?? 'model';
const seconds = Number(params.get('seconds') ?? '3');
const threadsWanted = Number(params.get('threads') ?? String(navigator.hardwareConcurrency || 1));
const base = new URL('./', document.baseURI).href;

/** Deterministic input in [0, 1) (an LCG: the result must not depend on Math.random). */
function fixedInput(length: number): Float32Array {
  const out = new Float32Array(length);
  let state = 12345;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out[i] = state / 2 ** 32;
  }
  return out;
}

async function loadTfjs(backend: 'wasm' | 'cpu'): Promise<{ forward: Forward; shape: number[]; threads: number }> {
  let threads = 1;
  if (backend === 'wasm') {
    setWasmPaths(base);
    // TF.js uses half the logical cores by default (1 of 2 here); threads need crossOriginIsolated.
    if (crossOriginIsolated) setThreadsCount(threadsWanted);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend ${backend} did not initialise`);
  await tf.ready();
  if (backend === 'wasm') threads = getThreadsCount();
  const model = await tfl.loadLayersModel(`${modelDir}/member-0/model.json`);
  const shape = model.inputs[0]!.shape.slice(1) as number[];
  const forward: Forward = async (input) => {
    const x = tf.tensor4d(input, [1, ...shape] as [number, number, number, number]);
    const y = model.predict(x) as tf.Tensor;
    const data = (await y.data()) as Float32Array;
    tf.dispose([x, y]);
    return data;
  };
  return { forward, shape, threads };
}

async function loadOrt(): Promise<{ forward: Forward; shape: number[]; threads: number }> {
  ort.env.wasm.wasmPaths = base;
  // ONNX Runtime Web also defaults to half the cores; it falls back to 1 thread without SharedArrayBuffer.
  const threads = crossOriginIsolated ? threadsWanted : 1;
  ort.env.wasm.numThreads = threads;
  const response = await fetch(`${modelDir}/member-0/model.onnx`);
  if (!response.ok) throw new Error(`model.onnx: HTTP ${response.status}`);
  const session = await ort.InferenceSession.create(new Uint8Array(await response.arrayBuffer()), {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
  });
  const meta = await (await fetch(`${modelDir}/member-0/model.json`)).json();
  const inputShape = (meta.modelTopology.config.layers[0].config.batch_input_shape as number[]).slice(1);
  const inputName = session.inputNames[0]!;
  const outputName = session.outputNames[0]!;
  const forward: Forward = async (input) => {
    const feeds = { [inputName]: new ort.Tensor('float32', input, [1, ...inputShape]) };
    const out = await session.run(feeds);
    const data = out[outputName]!.data as Float32Array;
    for (const t of Object.values(out)) t.dispose();
    return data;
  };
  return { forward, shape: inputShape, threads };
}

async function main(): Promise<BenchResult> {
  const t0 = performance.now();
  const loaded = runtime === 'ort-wasm' ? await loadOrt() : runtime === 'tfjs-wasm' ? await loadTfjs('wasm') : runtime === 'tfjs-cpu' ? await loadTfjs('cpu') : undefined;
  if (!loaded) throw new Error(`unknown runtime ${runtime}`);
  const loadMs = performance.now() - t0;
  const input = fixedInput(loaded.shape.reduce((a, b) => a * b, 1));
  const t1 = performance.now();
  const probabilities = Array.from(await loaded.forward(input));
  const firstRunMs = performance.now() - t1;
  await loaded.forward(input); // second warm-up: some kernels pick their path on the second call
  await new Promise<void>((start) => (window.__benchStart = start));
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || performance.now() - start < seconds * 1000) {
    const t = performance.now();
    await loaded.forward(input);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const msPerImg = times[Math.floor(times.length / 2)]!;
  return {
    runtime,
    model: modelDir,
    crossOriginIsolated,
    threads: loaded.threads,
    loadMs,
    firstRunMs,
    msPerImg,
    imgPerSec: 1000 / msPerImg,
    runs: times.length,
    probabilities,
  };
}

main().then(
  (result) => (window.__bench = { result }),
  (err: unknown) => (window.__bench = { error: String((err as Error)?.stack ?? err) }),
);
