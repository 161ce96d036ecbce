// Runs one training job, in a child process of `pocovid worker` (BullMQ's sandboxed processor).
// The child does the work, so the worker's own event loop stays free to renew the job's lock even
// while an epoch keeps this process busy for minutes; a child whose worker is gone stops at once
// (its job is taken over by another worker and resumes from the fold's checkpoint), so two
// processes never train the same fold.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxedJob } from 'bullmq';
import { PocovidError } from '../errors.js';
import { createDiskFeatureStore } from '../train/feature_disk.js';
import type { SharedFeatureStore } from '../train/feature_cache.js';
import type { TrainingHandler } from '../train/handlers.js';
import { SUMMARY_FILE } from '../train/outputs.js';
import { createProgress, type ProgressReporter } from '../train/progress.js';
import { trainFold } from '../train/train_fold.js';
import { describeFoldJob, foldJobSchema, type FoldJobProgress, type FoldJobResult } from './fold_jobs.js';

const parentAtStart = process.ppid;
// The worker died (kill -9, a crash): stop now rather than go on writing a fold another worker is
// about to take over. 'disconnect' comes at the next turn of the event loop; LostJobFence checks
// synchronously at every epoch's end as well.
process.on('disconnect', () => process.exit(1));

/** Raised when this process no longer owns its job; the job's new owner resumes the fold. */
export class LostJobError extends PocovidError {}

/** Stops the fold before its next checkpoint when the job was taken away or the worker is gone. */
class LostJobFence implements TrainingHandler {
  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly what: string,
  ) {}

  afterEpoch(): void {
    if (process.ppid !== parentAtStart) throw new LostJobError(`${this.what}: the worker that ran this job is gone; stopping (another worker resumes it from its checkpoint)`);
    if (this.signal?.aborted) throw new LostJobError(`${this.what}: ${String(this.signal.reason ?? 'the job was taken away')}; stopping (its new owner resumes it from its checkpoint)`);
  }
}

// Features stay in memory between the jobs this child runs (BullMQ keeps a child for the next job).
let stores: { dir: string; store: SharedFeatureStore } | undefined;
function featureStoreFor(dir: string, progress: ProgressReporter): SharedFeatureStore {
  if (stores?.dir !== dir) stores = { dir, store: createDiskFeatureStore(dir, { onDamaged: (file, problem) => progress.log(`${file}: ${problem}; its features are computed again`) }) };
  return stores.store;
}

/**
 * Progress lines prefixed with the job's name; the fold's step is sent to the queue (for the
 * submitting command and queue status) at the end of each step and at most every 30 s within one.
 */
function jobProgress(job: SandboxedJob, name: string): ProgressReporter {
  const local = createProgress(process.stderr, false);
  let label = '';
  let total = 0;
  let lastSent = Date.now();
  const send = (status: string): void => {
    lastSent = Date.now();
    const progress: FoldJobProgress = { status };
    void job.updateProgress(progress as unknown as object).catch(() => undefined);
  };
  send('started');
  return {
    start(text, count) {
      label = text;
      total = count;
      local.start(`[${name}] ${text}`, count);
    },
    update(done, fields) {
      local.update(done, fields);
      if (Date.now() - lastSent >= 30_000) send(`${label} ${done}/${total}`);
    },
    stop(summary) {
      local.stop(summary ? `[${name}] ${summary}` : undefined);
      if (summary) send(summary);
    },
    log(line) {
      local.log(`[${name}] ${line}`);
    },
  };
}

export default async function processFoldJob(job: SandboxedJob, _token?: string, signal?: AbortSignal): Promise<FoldJobResult> {
  const started = Date.now();
  const parsed = foldJobSchema.safeParse(job.data);
  if (!parsed.success) {
    throw new PocovidError(`job ${job.id}: not a training job this version of pocovid can run (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`);
  }
  const data = parsed.data;
  const name = describeFoldJob(data);
  // A fold finished by a worker that died before telling the queue: never trained again.
  if (!data.always && existsSync(join(data.train.out, SUMMARY_FILE))) return { kept: true, seconds: 0 };
  const progress = jobProgress(job, name);
  await trainFold(data.train, { progress, featureStore: featureStoreFor(data.featureDir, progress), handlers: [new LostJobFence(signal, name)] });
  return { kept: false, seconds: (Date.now() - started) / 1000 };
}
