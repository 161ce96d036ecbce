// `pocovid worker`: takes training jobs from the queue (BullMQ on Redis) and runs each in a child
// process (BullMQ's sandboxed processor, fold_processor.ts), up to `concurrency` at a time. This
// process only holds the jobs' locks and reports; if it dies, its locks run out, and BullMQ's
// stalled-job check (run by every worker) puts the jobs back on the queue for another worker,
// which resumes each fold from its checkpoint.
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import { checkQueueReachable, QUEUE_NAME, queueConnection } from './connection.js';
import { describeFoldJob, type FoldJobData, type FoldJobResult } from './fold_jobs.js';
import { KEEP_COMPLETED, KEEP_FAILED } from './executor.js';

export interface QueueWorkerOptions {
  url: string;
  /** Jobs run at once, each in its own process (each uses the machine's cores as a local fold does). */
  concurrency?: number;
  /** Shown in queue status and recorded on every job it runs (default host:pid). */
  name?: string;
  /** How long a job's lock lasts without renewal: after a worker dies, its jobs wait about this long (+ the stall check) before another takes them. */
  lockMs?: number;
  /** How often this worker looks for jobs whose worker died. */
  stalledCheckMs?: number;
  /** Times one job may be taken over after its worker died before it is failed. */
  maxStalledCount?: number;
  log?: (line: string) => void;
}

export const WORKER_DEFAULTS = { concurrency: 1, lockMs: 30_000, stalledCheckMs: 30_000, maxStalledCount: 5 } as const;

/** The processor module next to this one: compiled (dist/) or, under tsx, the TypeScript source. */
function processorFile(): string {
  const js = fileURLToPath(new URL('./fold_processor.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('./fold_processor.ts', import.meta.url));
}

export interface QueueWorker {
  name: string;
  /** Stops taking jobs; with `force`, also leaves the running ones (they are taken over after their locks run out). */
  close(force?: boolean): Promise<void>;
}

export async function startQueueWorker(options: QueueWorkerOptions): Promise<QueueWorker> {
  await checkQueueReachable(options.url);
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const worker = new Worker<FoldJobData, FoldJobResult>(QUEUE_NAME, processorFile(), {
    connection: queueConnection(options.url),
    name,
    concurrency: options.concurrency ?? WORKER_DEFAULTS.concurrency,
    lockDuration: options.lockMs ?? WORKER_DEFAULTS.lockMs,
    stalledInterval: options.stalledCheckMs ?? WORKER_DEFAULTS.stalledCheckMs,
    maxStalledCount: options.maxStalledCount ?? WORKER_DEFAULTS.maxStalledCount,
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: KEEP_FAILED,
    useWorkerThreads: false,
  });
  const named = (data: FoldJobData | undefined, id: string | undefined) => (data?.train?.out ? describeFoldJob(data) : `job ${id}`);
  worker.on('active', (job) => log(`${named(job.data, job.id)}: started (job ${job.id}${job.attemptsStarted > 1 ? `, taken over: start ${job.attemptsStarted}` : ''})`));
  worker.on('completed', (job, result) => log(`${named(job.data, job.id)}: ${result?.kept ? 'was finished already' : `done in ${Math.round(result?.seconds ?? 0)} s`}`));
  worker.on('failed', (job, err) => log(`${named(job?.data, job?.id)}: failed: ${err.message}`));
  worker.on('stalled', (jobId) => log(`job ${jobId}: its worker stopped answering; back on the queue (it resumes from its checkpoint)`));
  // The lock of a running job could not be renewed (Redis unreachable for longer than the lock):
  // another worker may take the job, so this one stops it before its next checkpoint.
  worker.on('lockRenewalFailed', (ids) => {
    for (const id of ids) {
      log(`job ${id}: its lock could not be renewed; stopping it here (another worker resumes it)`);
      worker.cancelJob(id, 'the job lock was lost');
    }
  });
  worker.on('error', (err) => log(`worker: ${err.message}`));
  await worker.waitUntilReady();
  return {
    name,
    async close(force = false) {
      await worker.close(force);
    },
  };
}
