// The submitting side of the queue: `cv --queue` and `sweep --queue` hand their folds to BullMQ as
// jobs, show what the workers are doing, and return when every job has finished (its fold folder
// then holds result.json, as after a local fold). The cv then pools and reports exactly as a local
// run does. Jobs outlive this command: run it again and it picks up the jobs still queued or
// running, and retries those that failed.
import { join, resolve } from 'node:path';
import { Job, Queue } from 'bullmq';
import { PocovidError } from '../errors.js';
import type { FoldExecutor, FoldTask } from '../train/fold_executor.js';
import type { ProgressReporter } from '../train/progress.js';
import { checkQueueReachable, QUEUE_NAME, queueConnection, shownQueueUrl } from './connection.js';
import { describeFoldJob, foldJobData, foldJobId, sameTraining, type FoldJobData, type FoldJobProgress, type FoldJobResult } from './fold_jobs.js';

export interface QueueExecutorOptions {
  url: string;
  /** The frozen-feature folder the workers share (on the shared disk). */
  featureDir: string;
  progress: ProgressReporter;
  /** How often the jobs' states are read (ms). */
  pollMs?: number;
  /** After this long with jobs waiting and no worker connected, say how to start one (ms). */
  noWorkerHintMs?: number;
}

export interface QueueExecutor extends FoldExecutor {
  close(): Promise<void>;
}

/** Jobs finished and unfinished are kept in Redis for `queue status`; the oldest go past these counts. */
export const KEEP_COMPLETED = { count: 10_000 };
export const KEEP_FAILED = { count: 10_000 };

interface Pending {
  id: string;
  data: FoldJobData;
  lastStatus?: string;
}

/** Puts the task on the queue, or takes over the job already there for its folder. */
async function submit(queue: Queue, task: FoldTask, featureDir: string, progress: ProgressReporter): Promise<Pending> {
  const data = foldJobData(task, featureDir);
  const id = foldJobId(data.train.out);
  const existing = await Job.fromId<FoldJobData>(queue, id);
  if (existing) {
    const state = await existing.getState();
    if (state === 'completed' || state === 'failed' || state === 'unknown') {
      // Finished earlier, yet its fold is wanted again (a retry, or result.json deleted on purpose).
      await existing.remove();
    } else if (sameTraining(existing.data.train, data.train)) {
      progress.log(`${describeFoldJob(data)}: already on the queue (${state}), waiting for it`);
      return { id, data };
    } else {
      throw new PocovidError(
        `${data.train.out}: a job with other training options is ${state} on the queue for this folder (job ${id}); wait for it to finish, or write this run to another --out`,
      );
    }
  }
  await queue.add('fold', data, { jobId: id, attempts: 1, removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_FAILED });
  return { id, data };
}

export async function openQueueExecutor(options: QueueExecutorOptions): Promise<QueueExecutor> {
  await checkQueueReachable(options.url);
  const queue = new Queue(QUEUE_NAME, { connection: queueConnection(options.url) });
  const { progress } = options;
  const pollMs = options.pollMs ?? 1000;
  const noWorkerHintMs = options.noWorkerHintMs ?? 15_000;
  return {
    async run(tasks) {
      if (!tasks.length) return;
      const pending: Pending[] = [];
      for (const task of tasks) pending.push(await submit(queue, task, options.featureDir, progress));
      progress.log(`${pending.length} job(s) on ${shownQueueUrl(options.url)}; workers take them (pocovid worker --queue ${shownQueueUrl(options.url)})`);
      const failures: string[] = [];
      const total = pending.length;
      let idleSince = Date.now();
      let hinted = false;
      while (pending.length) {
        await new Promise((r) => setTimeout(r, pollMs));
        let running = 0;
        for (const job of [...pending]) {
          const current = await Job.fromId<FoldJobData, FoldJobResult>(queue, job.id);
          const name = describeFoldJob(job.data);
          const state = current ? await current.getState() : 'missing';
          if (state === 'completed' || state === 'failed' || state === 'missing') {
            pending.splice(pending.indexOf(job), 1);
            const done = total - pending.length;
            if (state === 'completed') {
              const result = current!.returnvalue;
              progress.log(`${name}: ${result?.kept ? 'found finished' : 'done'} on ${current!.processedBy ?? 'a worker'} (${done}/${total})`);
            } else {
              const reason = state === 'missing' ? 'the job was removed from the queue' : current!.failedReason || 'failed without a reason';
              failures.push(`${name} (${job.data.train.out})${current?.processedBy ? ` on ${current.processedBy}` : ''}: ${reason}`);
              progress.log(`${name}: FAILED: ${reason} (${done}/${total})`);
            }
            continue;
          }
          if (state === 'active') {
            running++;
            const status = (current!.progress as Partial<FoldJobProgress> | undefined)?.status;
            const shown = `${status ?? 'started'} on ${current!.processedBy ?? 'a worker'}`;
            if (shown !== job.lastStatus) {
              job.lastStatus = shown;
              progress.log(`${name}: ${shown}`);
            }
          }
        }
        if (running > 0) idleSince = Date.now();
        else if (!hinted && pending.length && Date.now() - idleSince > noWorkerHintMs && (await queue.getWorkersCount()) === 0) {
          hinted = true;
          progress.log(`no worker is connected to ${shownQueueUrl(options.url)}: start one on any machine that sees this run's folders: pocovid worker --queue ${shownQueueUrl(options.url)}`);
        }
      }
      if (failures.length) {
        throw new PocovidError(`${failures.length} of ${total} job(s) failed (the error of each is kept: pocovid queue status --queue ${shownQueueUrl(options.url)}):\n  ${failures.join('\n  ')}\nrun the same command again to retry them`);
      }
    },
    async close() {
      await queue.close();
    },
  };
}

/** Where a queued run keeps the frozen features its workers share, unless --feature-dir says otherwise. */
export function defaultFeatureDir(out: string): string {
  return join(resolve(out), 'features');
}

/** Runs `fn` with a queue executor when `url` is given (closed afterwards), or with none (local folds). */
export async function withQueueExecutor<T>(url: string | undefined, featureDir: string | undefined, progress: ProgressReporter, fn: (executor?: QueueExecutor) => Promise<T>): Promise<T> {
  if (!url) return fn(undefined);
  if (!featureDir) throw new PocovidError('a queued run needs a folder for the frozen features that every worker sees');
  const executor = await openQueueExecutor({ url, featureDir, progress });
  try {
    return await fn(executor);
  } finally {
    await executor.close();
  }
}
