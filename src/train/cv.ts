// Cross-validation: every fold in turn (finished folds are kept on a re-run), out-of-fold
// predictions for every frame, per-fold and pooled reports, and the fold ensemble.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readPredictionsCsv, writePredictionsCsv } from '../eval/csv.js';
import { checkPredictionsCover } from '../eval/pool_check.js';
import type { PredictionRow } from '../eval/types.js';
import { collectRun, RUN_GUARD_FILE, writeModelDirFiles, type Aggregation } from '../infer/model_dir.js';
import { openDataset } from '../data/dataset.js';
import { fitGuardOnRows } from '../guard/fit_dataset.js';
import { writeJsonAtomicSync } from '../util/atomic.js';
import { readJsonFile } from '../util/json_file.js';
import { PocovidError } from '../errors.js';
import type { TrainConfigInput } from './config.js';
import { countFolds } from './data_access.js';
import { PREDICTIONS_FILE, SUMMARY_FILE } from './outputs.js';
import { createProgress } from './progress.js';
import { createFeatureStore } from './feature_cache.js';
import { trainFold, type TrainFoldResult } from './train_fold.js';

export type CvOptions = Omit<TrainConfigInput, 'fold'> & {
  /** Which folds to run (default: all of the dataset's). */
  folds?: number[];
  ensembleAggregation?: Aggregation;
};

export interface CvResult {
  out: string;
  folds: { fold: number; kept: boolean; summary: Omit<TrainFoldResult, 'testPredictions'> }[];
  classes: string[];
  wallSeconds: number;
  predictions: string;
  ensemble: string;
}

export const ENSEMBLE_DIR = 'ensemble';

export async function runCrossValidation(options: CvOptions, quiet = false): Promise<CvResult> {
  const started = Date.now();
  const out = resolve(options.out);
  const progress = createProgress(process.stderr, quiet);
  const folds = options.folds ?? Array.from({ length: countFolds(options.data) }, (_, k) => k);
  writeJsonAtomicSync(join(out, 'config.json'), { ...options, out, kind: 'cv', folds });
  const results: CvResult['folds'] = [];
  const featureStore = createFeatureStore();
  for (const fold of folds) {
    const foldDir = join(out, `fold-${fold}`);
    const summaryPath = join(foldDir, SUMMARY_FILE);
    if (existsSync(summaryPath)) {
      progress.log(`fold ${fold}: finished earlier, kept (${foldDir})`);
      const summary = readJsonFile<CvResult['folds'][number]['summary']>(summaryPath, { what: 'the fold summary', hint: `delete it to train fold ${fold} again` });
      results.push({ fold, kept: true, summary });
      continue;
    }
    progress.log(`fold ${fold + 1}/${folds.length}`);
    const { ensembleAggregation: _a, folds: _f, ...trainOptions } = options;
    const result = await trainFold({ ...trainOptions, fold, out: foldDir }, { quiet, progress, featureStore });
    const { testPredictions: _p, ...summary } = result;
    results.push({ fold, kept: false, summary });
  }

  const classes = results[0]?.summary.classes;
  if (!classes) throw new PocovidError('cross-validation ran no fold');
  const { rows } = openDataset(options.data);
  const pooled: PredictionRow[] = [];
  for (const { fold } of results) {
    const file = join(out, `fold-${fold}`, PREDICTIONS_FILE);
    const table = readPredictionsCsv(file);
    if (JSON.stringify(table.classes) !== JSON.stringify(classes)) {
      throw new PocovidError(`fold ${fold} was trained on classes ${table.classes.join(',')}, fold ${results[0]!.fold} on ${classes.join(',')}`);
    }
    const testFrames = rows.filter((r) => r.fold === fold && classes.includes(r.label));
    checkPredictionsCover(table.rows, testFrames, file, `test frames of fold ${fold}`, `delete ${join(out, `fold-${fold}`, SUMMARY_FILE)} to train fold ${fold} again`);
    pooled.push(...table.rows);
  }
  const predictions = join(out, PREDICTIONS_FILE);
  writePredictionsCsv(predictions, pooled, classes);

  // Every frame trained some member of the ensemble, so the ensemble's guard is fitted on all of them.
  const guard = await fitGuardOnRows(options.data, rows.filter((r) => classes.includes(r.label)));
  if (guard) writeJsonAtomicSync(join(out, RUN_GUARD_FILE), guard);
  const collected = collectRun(out);
  const ensemble = join(out, ENSEMBLE_DIR);
  await writeModelDirFiles(ensemble, { ...collected.info, aggregation: options.ensembleAggregation ?? 'mean' }, collected.members);

  const wallSeconds = (Date.now() - started) / 1000;
  const result: CvResult = { out, folds: results, classes, wallSeconds, predictions, ensemble };
  writeJsonAtomicSync(join(out, 'cv.json'), {
    ...result,
    options,
    totals: {
      trainSeconds: results.reduce((s, r) => s + r.summary.trainSeconds, 0),
      featureCacheSeconds: results.reduce((s, r) => s + r.summary.featureCacheSeconds, 0),
    },
  });
  return result;
}
