// `pocovid queue status`: what the queue holds — jobs waiting, running (on which worker, doing
// what), done and failed (with the error each failed with) — and the workers connected now.
import { Queue, type Job } from 'bullmq';
import { checkQueueReachable, QUEUE_NAME, queueConnection, shownQueueUrl } from './connection.js';
import type { FoldJobData, FoldJobProgress, FoldJobResult } from './fold_jobs.js';

export interface QueueJobInfo {
  id: string;
  label: string;
  out: string;
  worker?: string;
  /** The running job's last step ("epoch 3/40 …"). */
  status?: string;
  /** The failed job's error. */
  error?: string;
  /** Times the job was started (more than 1: taken over after its worker died). */
  starts: number;
  submittedAt: string;
  finishedAt?: string;
}

export interface QueueStatus {
  queue: string;
  counts: { waiting: number; running: number; done: number; failed: number };
  workers: string[];
  running: QueueJobInfo[];
  waiting: QueueJobInfo[];
  failed: QueueJobInfo[];
  /** The most recently finished jobs (at most `limit`). */
  done: QueueJobInfo[];
}

function info(job: Job<FoldJobData, FoldJobResult>): QueueJobInfo {
  const progress = job.progress as Partial<FoldJobProgress> | undefined;
  return {
    id: job.id ?? '?',
    label: job.data?.label ?? job.name,
    out: job.data?.train?.out ?? '?',
    ...(job.processedBy ? { worker: job.processedBy } : {}),
    ...(progress?.status ? { status: progress.status } : {}),
    ...(job.failedReason ? { error: job.failedReason } : {}),
    starts: job.attemptsStarted ?? 0,
    submittedAt: new Date(job.timestamp).toISOString(),
    ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
  };
}

export async function queueStatus(url: string, limit = 20): Promise<QueueStatus> {
  await checkQueueReachable(url);
  const queue = new Queue<FoldJobData, FoldJobResult>(QUEUE_NAME, { connection: queueConnection(url) });
  try {
    const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
    const list = async (types: Parameters<typeof queue.getJobs>[0], end = limit - 1) => (await queue.getJobs(types, 0, end)).filter((j): j is Job<FoldJobData, FoldJobResult> => Boolean(j)).map(info);
    const workers = (await queue.getWorkers()).map((w) => w['name'] ?? w['addr'] ?? '?');
    return {
      queue: shownQueueUrl(url),
      counts: {
        waiting: (counts['waiting'] ?? 0) + (counts['prioritized'] ?? 0) + (counts['delayed'] ?? 0),
        running: counts['active'] ?? 0,
        done: counts['completed'] ?? 0,
        failed: counts['failed'] ?? 0,
      },
      workers,
      running: await list('active', -1),
      waiting: await list(['waiting', 'prioritized', 'delayed']),
      failed: await list('failed'),
      done: await list('completed'),
    };
  } finally {
    await queue.close();
  }
}

/** The status as lines of text (what `queue status` prints without --json). */
export function formatQueueStatus(status: QueueStatus): string {
  const { counts } = status;
  const lines = [
    `queue ${status.queue}: ${counts.waiting} waiting, ${counts.running} running, ${counts.done} done, ${counts.failed} failed`,
    `workers connected: ${status.workers.length ? status.workers.join(', ') : 'none'}`,
  ];
  const job = (j: QueueJobInfo, extra: string) => `  ${j.label} of ${j.out}${extra}`;
  if (status.running.length) lines.push('running:', ...status.running.map((j) => job(j, ` on ${j.worker ?? '?'}${j.status ? `: ${j.status}` : ''}${j.starts > 1 ? ` (start ${j.starts}: taken over)` : ''}`)));
  if (status.waiting.length) lines.push(`waiting (first ${status.waiting.length}):`, ...status.waiting.map((j) => job(j, '')));
  if (status.failed.length) lines.push(`failed (latest ${status.failed.length}):`, ...status.failed.map((j) => job(j, ` on ${j.worker ?? '?'} at ${j.finishedAt ?? '?'}: ${j.error ?? 'no error recorded'}`)));
  if (status.done.length) lines.push(`done (latest ${status.done.length}):`, ...status.done.map((j) => job(j, ` on ${j.worker ?? '?'} at ${j.finishedAt ?? '?'}`)));
  return lines.join('\n');
}
