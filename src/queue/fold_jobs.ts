// What a training job on the queue holds: one fold (or a refit) with its whole training input, the
// folder of frozen features every worker shares, and how to name it in progress lines. A job's id
// comes from its fold folder, so a command run again finds the job it submitted earlier (still
// waiting, running, finished or failed) instead of queueing the same fold twice.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import { z } from 'zod';
import { trainConfigSchema, type TrainConfigInput } from '../train/config.js';
import type { FoldTask } from '../train/fold_executor.js';

/** Bumped when the job data changes shape: a worker refuses jobs it cannot read. */
export const FOLD_JOB_VERSION = 1;

export const foldJobSchema = z.object({
  version: z.literal(FOLD_JOB_VERSION),
  label: z.string(),
  train: trainConfigSchema,
  always: z.boolean(),
  featureDir: z.string().min(1),
  submittedBy: z.string(),
});

export type FoldJobData = Omit<z.input<typeof foldJobSchema>, 'train'> & { train: TrainConfigInput };

/** What a finished job returns (kept small: the fold's folder holds the results). */
export interface FoldJobResult {
  /** The folder held a finished fold already (a job taken over after its fold was written). */
  kept: boolean;
  seconds: number;
}

/** Progress a running job reports (job.updateProgress), shown by the submitting command and queue status. */
export interface FoldJobProgress {
  /** What the fold is doing: "features train 120/400", "epoch 3/40 …". */
  status: string;
}

/**
 * Paths made absolute: the worker runs on another machine and in another folder, and finds the
 * dataset, the weights and the run where this machine does (a shared file system, same mount point).
 */
function absolutePaths(train: TrainConfigInput): TrainConfigInput {
  return {
    ...train,
    data: resolve(train.data),
    out: resolve(train.out),
    ...(train.weights ? { weights: resolve(train.weights) } : {}),
    ...(train.init ? { init: resolve(train.init) } : {}),
  };
}

export function foldJobData(task: FoldTask, featureDir: string): FoldJobData {
  return { version: FOLD_JOB_VERSION, label: task.label, train: absolutePaths(task.train), always: task.always ?? false, featureDir: resolve(featureDir), submittedBy: hostname() };
}

/** The job id of a fold folder (BullMQ ids must not be whole numbers; ours never are). */
export function foldJobId(out: string): string {
  return `fold-${createHash('sha256').update(resolve(out)).digest('hex').slice(0, 32)}`;
}

/** "fold 2/5 of …/recipes/grey/fold-1" for progress lines: the label and where it writes. */
export function describeFoldJob(data: Pick<FoldJobData, 'label' | 'train'>): string {
  const out = data.train.out;
  return `${data.label} of ${basename(dirname(out))}/${basename(out)}`;
}

/** The same fold with the same options (the resolved configs compared; defaults filled in). */
export function sameTraining(a: TrainConfigInput, b: TrainConfigInput): boolean {
  const parse = (t: TrainConfigInput) => JSON.stringify(trainConfigSchema.parse(t));
  return parse(a) === parse(b);
}
