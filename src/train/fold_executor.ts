// How the folds of a cross-validation get trained: one after another in this process (the
// default), or as jobs on a queue that workers on other machines take (src/queue/). Either way
// each fold writes its own folder, result.json last, and the cv pools what the folders hold, so a
// cv reports exactly the same whichever trained its folds.
import type { TrainConfigInput } from './config.js';
import type { SharedFeatureStore } from './feature_cache.js';
import type { ProgressReporter } from './progress.js';
import { trainFold } from './train_fold.js';

export interface FoldTask {
  /** For progress lines: "fold 2/5", "refit". */
  label: string;
  /** The fold's whole training input, `fold` and `out` (its folder) included. */
  train: TrainConfigInput;
  /**
   * Train even when the folder already holds a finished fold (result.json): the refit, whose
   * epochs or penalty follow the folds. A cv hands over only folds without a result.json.
   */
  always?: boolean;
}

export interface FoldExecutor {
  /** Trains every task; resolves when each folder holds its result, rejects naming every task that failed. */
  run(tasks: readonly FoldTask[]): Promise<void>;
}

/** Folds trained here, in order, sharing the frozen-feature store (memory, or memory over a folder). */
export function localExecutor(featureStore: SharedFeatureStore, progress: ProgressReporter, quiet: boolean): FoldExecutor {
  return {
    async run(tasks) {
      for (const task of tasks) {
        progress.log(task.label);
        await trainFold(task.train, { quiet, progress, featureStore });
      }
    },
  };
}
