// `serve --workers N`: N server processes on one port (node:cluster; the primary holds the socket
// and hands connections to the workers in turn). Each worker is a whole `pocovid serve` with its own
// model, queue and upload folder: the server keeps no state but the model folder, so the same holds
// for replicas on several machines behind any load balancer.
// The primary loads no model. It starts the workers and says the address once all of them listen;
// it gathers every worker's metrics for GET /metrics (any worker answers with the sum); a worker
// that dies is replaced (the others go on serving); one that dies before it is ready stops the
// start. First SIGINT/SIGTERM: every worker drains (as a single server does) and the primary exits
// when they have; a second: the workers stop at once. A worker whose primary is gone stops too.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { PocovidError } from '../errors.js';

type Message =
  | { type: 'pocovid:ready'; address: string; description: string }
  | { type: 'pocovid:metrics?'; id: number }
  | { type: 'pocovid:metrics'; id: number; text?: string; error?: string }
  | { type: 'pocovid:stop' }
  | { type: 'pocovid:abort' };

const isMessage = (m: unknown): m is Message => typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('pocovid:');

/** Whether this process is a worker of `serve --workers`. */
export const isServeWorker = (): boolean => cluster.isWorker;

export interface PrimaryOptions {
  workers: number;
  /** Progress and problems (stderr). */
  log(line: string): void;
  /** Once every worker listens: the address and what the first worker serves. */
  ready(address: string, description: string): void;
  /** A worker that dies is replaced at most this many times within `crashWindowMs` (default 5 in 60 s). */
  maxCrashes?: number;
  crashWindowMs?: number;
}

/** Runs the primary; resolves with the exit code once every worker has stopped. */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  const aggregator = new AggregatorRegistry();
  const maxCrashes = options.maxCrashes ?? 5;
  const crashWindowMs = options.crashWindowMs ?? 60_000;
  const ready = new Set<number>();
  const crashes: number[] = [];
  let started = false;
  let stopping = false;
  let failed = false;
  return new Promise((resolve) => {
    const stopAll = (type: 'pocovid:stop' | 'pocovid:abort'): void => {
      for (const worker of Object.values(cluster.workers ?? {})) if (worker?.isConnected()) worker.send({ type } satisfies Message);
    };
    const fork = (): Worker => {
      const worker = cluster.fork();
      worker.on('message', (message: unknown) => {
        if (!isMessage(message)) return;
        if (message.type === 'pocovid:ready') {
          ready.add(worker.id);
          if (!started && ready.size === options.workers) {
            started = true;
            options.ready(message.address, message.description);
          }
        } else if (message.type === 'pocovid:metrics?') {
          aggregator.clusterMetrics().then(
            (text) => worker.isConnected() && worker.send({ type: 'pocovid:metrics', id: message.id, text } satisfies Message),
            (err: Error) => worker.isConnected() && worker.send({ type: 'pocovid:metrics', id: message.id, error: err.message } satisfies Message),
          );
        }
      });
      return worker;
    };
    cluster.on('exit', (worker, code, signal) => {
      const wasReady = ready.delete(worker.id);
      const how = signal ? `killed by ${signal}` : `exit code ${code}`;
      if (!stopping) {
        if (!started || !wasReady) {
          options.log(`pocovid serve: a worker stopped before it was ready (${how}); stopping`);
          failed = true;
          stopping = true;
          stopAll('pocovid:stop');
        } else {
          const now = Date.now();
          crashes.push(now);
          while (crashes.length && crashes[0]! < now - crashWindowMs) crashes.shift();
          if (crashes.length > maxCrashes) {
            options.log(`pocovid serve: workers died ${crashes.length} times within ${crashWindowMs / 1000} s (last: ${how}); stopping`);
            failed = true;
            stopping = true;
            stopAll('pocovid:stop');
          } else {
            options.log(`pocovid serve: worker ${worker.process.pid} stopped (${how}); starting another (the others go on serving)`);
            fork();
          }
        }
      } else if (code !== 0) {
        failed = true;
      }
      if (stopping && Object.keys(cluster.workers ?? {}).length === 0) resolve(failed ? 1 : 0);
    });
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        options.log(`pocovid serve: ${signal} again: stopping every worker now`);
        failed = true;
        stopAll('pocovid:abort');
        return;
      }
      stopping = true;
      options.log(`pocovid serve: ${signal}: every worker finishes its requests in progress (${signal} again to stop at once)`);
      stopAll('pocovid:stop');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    for (let i = 0; i < options.workers; i++) fork();
  });
}

export interface WorkerLink {
  /** GET /metrics of this worker: the sum over every worker, gathered by the primary. */
  aggregate(): Promise<string>;
  /** Tells the primary this worker listens. */
  ready(address: string, description: string): void;
}

/**
 * The worker's side. `registry` is what this worker counts; `stop` drains (the primary's first
 * signal, or the primary gone), `abort` stops at once (its second).
 */
export function linkWorker(handlers: { stop(): void; abort(): void }): WorkerLink & { setRegistry(registry: Registry): void; release(): void } {
  const waiting = new Map<number, { resolve(text: string): void; reject(err: Error): void }>();
  let next = 0;
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.type === 'pocovid:stop') handlers.stop();
    else if (message.type === 'pocovid:abort') handlers.abort();
    else if (message.type === 'pocovid:metrics') {
      const request = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.error !== undefined) request?.reject(Object.assign(new PocovidError(`metrics of the other workers did not arrive: ${message.error}`), { statusCode: 503 }));
      else request?.resolve(message.text ?? '');
    }
  });
  const onDisconnect = (): void => handlers.stop();
  process.on('disconnect', onDisconnect);
  return {
    // A worker that could not start ends once the CLI has reported its error and set the exit code
    // (the IPC channel would keep it alive; a plain disconnect would make cluster exit it with 0).
    release() {
      process.off('disconnect', onDisconnect);
      setImmediate(() => process.exit(process.exitCode ?? 1));
    },
    setRegistry(registry) {
      // prom-client installs a worker's answer to the primary's requests in the constructor.
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([registry]);
    },
    aggregate() {
      return new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        process.send!({ type: 'pocovid:metrics?', id } satisfies Message);
      });
    },
    ready(address, description) {
      process.send!({ type: 'pocovid:ready', address, description } satisfies Message);
    },
  };
}
