// The main thread's handle on the model worker (model_worker.ts): starts it, waits for the model,
// sends frames (their buffers transferred) and gets per-frame progress and the decision back. A
// cancelled job settles at once with CancelledError; whatever the worker still says about it is
// dropped, so a cancelled analysis can never show a result.
import type { DecisionFrame, DecisionOutput } from '../../decision/core.js';
import { MODEL_WORKER_FILE, transferList, type AdaptCall, type AdaptReplies, type DecideSource, type FromWorker, type ModelInfo, type ToWorker } from './worker_protocol.js';

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
  }
}

export interface Decided {
  output: DecisionOutput;
  /** The frames at the model's input size, for drawing. */
  frames: DecisionFrame[];
}

interface Job {
  /** A decision's Decided, or an adaptation call's reply value. */
  resolve: (value: never) => void;
  reject: (err: Error) => void;
  onProgress: (done: number, total: number, stage?: 'features' | 'training') => void;
}

/** An adaptation call without its id (the client numbers it). */
type CallBody = AdaptCall extends infer C ? (C extends AdaptCall ? Omit<C, 'id'> : never) : never;

export interface ModelClient {
  info: ModelInfo;
  decide(source: DecideSource, kind: 'image' | 'video', onProgress: (done: number, total: number) => void): { id: number; done: Promise<Decided> };
  /** An "Adapt to my data" call (adapt_worker.ts); its buffers are handed over, not copied. */
  call<M extends CallBody>(message: M, onProgress?: Job['onProgress']): { id: number; done: Promise<AdaptReplies[M['type']]> };
  cancel(id: number): void;
}

/** The pixel buffers of a source, handed to the worker rather than copied. */
function sourceArrays(source: DecideSource): Uint8Array[] {
  return 'image' in source ? [source.image.bytes] : source.frames.map((f) => f.rgb);
}

/** Starts the worker and loads the model folder at `base`; rejects with the worker's reason. */
export function startModelWorker(base: string, threads?: number): Promise<ModelClient> {
  const worker = new Worker(new URL(MODEL_WORKER_FILE, base), { type: 'module', name: 'pocovid-model' });
  const jobs = new Map<number, Job>();
  let nextId = 1;
  /** Set when the worker has failed: later jobs fail at once instead of waiting for ever. */
  let failed: Error | undefined;
  const post = (message: ToWorker, transfer: Transferable[] = []): void => worker.postMessage(message, transfer);
  return new Promise((resolveReady, rejectReady) => {
    worker.onerror = (event) => {
      // A worker that fails to start (a missing file, a syntax error) says so here only.
      const err = new Error(`the model worker failed: ${event.message || 'it could not be started'}; reload the page`);
      failed = err;
      rejectReady(err);
      for (const job of jobs.values()) job.reject(err);
      jobs.clear();
    };
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message.type === 'ready') resolveReady(client(message.info));
      else if (message.type === 'load-error') rejectReady(new Error(message.message));
      else {
        const job = jobs.get(message.id);
        if (!job) return; // cancelled: nothing it says is shown
        if (message.type === 'progress') job.onProgress(message.done, message.total, message.stage);
        else {
          jobs.delete(message.id);
          if (message.type === 'result') (job.resolve as (d: Decided) => void)({ output: message.output, frames: message.frames });
          else if (message.type === 'reply') (job.resolve as (v: unknown) => void)(message.value);
          else if (message.type === 'error') job.reject(new Error(message.message));
          else job.reject(new CancelledError());
        }
      }
    };
    post({ type: 'load', base, ...(threads ? { threads } : {}) });
  });

  function client(info: ModelInfo): ModelClient {
    return {
      info,
      decide(source, kind, onProgress) {
        const id = nextId++;
        if (failed) return { id, done: Promise.reject(failed) };
        const done = new Promise<Decided>((resolve, reject) => jobs.set(id, { resolve: resolve as Job['resolve'], reject, onProgress }));
        post({ type: 'decide', id, kind, source }, transferList(sourceArrays(source)));
        return { id, done };
      },
      call(message, onProgress = () => {}) {
        const id = nextId++;
        if (failed) return { id, done: Promise.reject(failed) };
        const done = new Promise<never>((resolve, reject) => jobs.set(id, { resolve: resolve as Job['resolve'], reject, onProgress }));
        const full = { ...message, id } as AdaptCall;
        post(full, full.type === 'adapt-add' ? transferList(sourceArrays(full.source)) : []);
        return { id, done };
      },
      cancel(id) {
        const job = jobs.get(id);
        if (!job) return;
        jobs.delete(id);
        post({ type: 'cancel', id });
        job.reject(new CancelledError());
      },
    };
  }
}
