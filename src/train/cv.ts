// Cross-validation: every fold in turn (finished folds are kept on a re-run), out-of-fold
// predictions for every frame, per-fold and pooled reports, and the fold ensemble.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readPredictionsCsv, writePredictionsCsv } from '../eval/csv.js';
import { checkPredictionsCover } from '../eval/pool_check.js';
import type { PredictionRow } from '../eval/types.js';
import { collectRun, RUN_GUARD_FILE } from '../model_dir/run.js';
import { writeModelDirFiles } from '../model_dir/model_dir.js';
import { type Aggregation } from '../model_dir/meta.js';
import { openDataset } from '../data/dataset.js';
import { fitGuardOnRows } from '../guard/fit_dataset.js';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic.js';
import { readJsonFile } from '../util/json_file.js';
import { PocovidError } from '../errors.js';
import type { TrainConfigInput } from './config.js';
import { countFolds } from './data_access.js';
import { PREDICTIONS_FILE, SUMMARY_FILE } from './outputs.js';
import { createProgress, type ProgressReporter } from './progress.js';
import { createFeatureStore, type SharedFeatureStore } from './feature_cache.js';
import { createDiskFeatureStore } from './feature_disk.js';
import { localExecutor, type FoldExecutor } from './fold_executor.js';
import { evaluateRun } from '../eval/report.js';
import { repeatFigures, repeatsMarkdown, summarizeRepeats, type RepeatFigures, type RepeatsSummary } from '../eval/repeats.js';
import { datasetFoldSeed, refoldDataset } from '../data/refold.js';
import type { TrainFoldResult } from './train_fold.js';
import { LOGISTIC_FILE } from './logistic_head.js';

export type CvOptions = Omit<TrainConfigInput, 'fold'> & {
  /** Which folds to run (default: all of the dataset's). */
  folds?: number[];
  ensembleAggregation?: Aggregation;
  /**
   * Fold assignments to repeat the cv over (data refold seeds). Absent, or only the dataset's own
   * seed: one cv in `out`. Otherwise one cv per seed in `out/seed-<s>` (the dataset refolded into
   * `out/datasets/seed-<s>`), all sharing the frozen-feature cache, and repeats.json/.md in `out`.
   */
  foldSeeds?: number[];
  /**
   * After the cross-validation (default on): train the recipe once more on every frame of the
   * dataset into `out/refit` — the model predict, export and serve use for the run. The cv's
   * reports stay the estimate of how it does; the refit has no test frames of its own.
   */
  refit?: boolean;
  /**
   * Keep the frozen features in this folder as well as in memory (feature_disk.ts): folds trained
   * by other processes or machines, and a run resumed later, reuse them. Absent: memory only.
   */
  featureDir?: string;
};

/** Where a run's folds get trained and where their frozen features are shared (see fold_executor.ts). */
export interface CvShared {
  progress?: ProgressReporter;
  featureStore?: SharedFeatureStore;
  /** Default: every fold in this process, one after another. */
  executor?: FoldExecutor;
}

/** The options a fold is trained with: the cv's own (which folds, seeds, refit...) removed. */
function trainOptionsOf(options: CvOptions): Omit<TrainConfigInput, 'fold'> {
  const { ensembleAggregation: _a, folds: _f, foldSeeds: _s, refit: _r, featureDir: _d, ...trainOptions } = options;
  return trainOptions;
}

export interface CvResult {
  out: string;
  folds: { fold: number; kept: boolean; summary: Omit<TrainFoldResult, 'testPredictions'> }[];
  classes: string[];
  wallSeconds: number;
  predictions: string;
  ensemble: string;
}

export const ENSEMBLE_DIR = 'ensemble';

export interface RepeatedCvResult {
  out: string;
  /** One cv per fold seed (a single one without repeats), each evaluated. */
  runs: (CvResult & { seed: number; report: string; figures: RepeatFigures })[];
  /** repeats.md / repeats.json when there are several fold seeds. */
  repeats?: { markdown: string; json: string; summary: RepeatsSummary };
  /** The model trained on every frame (absent with refit: false). */
  refit?: { out: string; model: string; epochs?: number; penalty?: number };
  wallSeconds: number;
}

/** Where a cv run keeps the model trained on every frame. */
export const REFIT_DIR = 'refit';

/** The middle value (the lower of the two middle ones for an even count). */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/**
 * The recipe once more on every frame, its free choices taken from the folds (never from a test
 * fold: each fold made its own on its training folds): a logistic head's median penalty, or an
 * epoch-based head's median best epoch.
 */
async function refitOnAllFrames(options: CvOptions, out: string, runs: readonly CvResult[], progress: ProgressReporter, executor: FoldExecutor): Promise<NonNullable<RepeatedCvResult['refit']>> {
  const folds = runs.flatMap((r) => r.folds.map((f) => ({ run: r.out, ...f })));
  const refitOut = join(out, REFIT_DIR);
  const trainOptions = trainOptionsOf(options);
  if (options.head === 'logistic') {
    const penalties = folds.map((f) => readJsonFile<{ penalty: number }>(join(f.run, `fold-${f.fold}`, LOGISTIC_FILE), { what: "the fold's logistic-head fit" }).penalty);
    // Of the two middle penalties of an even count, the larger: the more regularised model.
    const sorted = [...penalties].sort((a, b) => a - b);
    const penalty = sorted[Math.ceil((sorted.length - 1) / 2)]!;
    progress.log(`refit on every frame: logistic head, penalty ${penalty} (the folds chose ${penalties.join(', ')})`);
    await executor.run([{ label: 'refit', train: { ...trainOptions, fold: 0, refit: true, penalties: [penalty], out: refitOut }, always: true }]);
    return { out: refitOut, model: join(refitOut, 'model'), penalty };
  }
  const epochs = Math.max(1, median(folds.map((f) => f.summary.bestEpoch + 1)));
  progress.log(`refit on every frame: ${epochs} epochs (the folds' best epochs: ${folds.map((f) => f.summary.bestEpoch + 1).join(', ')})`);
  await executor.run([{ label: 'refit', train: { ...trainOptions, fold: 0, refit: true, epochs, out: refitOut }, always: true }]);
  return { out: refitOut, model: join(refitOut, 'model'), epochs };
}

/** A check of a dataset before a cv trains on it (the CLI's leakage audit); it throws to refuse. */
export type DatasetCheck = (data: string, runOut: string) => Promise<void>;

/** Cross-validation over every fold, once per fold seed, each evaluated; see CvOptions.foldSeeds. */
export async function runRepeatedCrossValidation(
  options: CvOptions,
  quiet = false,
  shared: Pick<CvShared, 'executor'> & { checkDataset?: DatasetCheck } = {},
): Promise<RepeatedCvResult> {
  const started = Date.now();
  const out = resolve(options.out);
  const progress = createProgress(process.stderr, quiet);
  const ownSeed = datasetFoldSeed(openDataset(options.data).info);
  const seeds = options.foldSeeds?.length ? [...new Set(options.foldSeeds)] : [ownSeed];
  const featureStore = options.featureDir ? createDiskFeatureStore(options.featureDir) : createFeatureStore();
  const executor = shared.executor ?? localExecutor(featureStore, progress, quiet);
  const runs: RepeatedCvResult['runs'] = [];
  const single = seeds.length === 1 && seeds[0] === ownSeed;
  if (!single) writeJsonAtomicSync(join(out, 'config.json'), { ...options, out, kind: 'cv-repeats', foldSeeds: seeds });
  const plan = seeds.map((seed) => ({
    seed,
    data: seed === ownSeed ? options.data : refoldDataset(options.data, join(out, 'datasets', `seed-${seed}`), seed).dir,
    runOut: single ? out : join(out, `seed-${seed}`),
  }));
  // Every fold assignment is checked before any fold trains: one refused (another seed can put
  // near-duplicates of two patients in two folds) must not come after hours of the others.
  for (const { data, runOut } of plan) await shared.checkDataset?.(data, runOut);
  for (const { seed, data, runOut } of plan) {
    if (!single) progress.log(`fold seed ${seed} (${seeds.indexOf(seed) + 1}/${seeds.length}): ${runOut}`);
    const result = await runCrossValidation({ ...options, data, out: runOut }, quiet, { progress, featureStore, executor });
    const { written, report } = await evaluateRun(result.out);
    runs.push({ ...result, seed, report: written.reportMd, figures: repeatFigures(report) });
  }
  let repeats: RepeatedCvResult['repeats'];
  if (!single) {
    const summary = summarizeRepeats(runs.map((r) => ({ seed: r.seed, run: r.out, ...r.figures })));
    const json = join(out, 'repeats.json');
    const markdown = join(out, 'repeats.md');
    writeJsonAtomicSync(json, summary);
    writeFileAtomicSync(markdown, repeatsMarkdown(summary, `${options.model} cv`));
    repeats = { json, markdown, summary };
  }
  const refit = options.refit === false ? undefined : await refitOnAllFrames(options, out, runs, progress, executor);
  return { out, runs, repeats, refit, wallSeconds: (Date.now() - started) / 1000 };
}

/** One cross-validation over the dataset's folds (the shared store lets fold seeds reuse features). */
export async function runCrossValidation(options: CvOptions, quiet = false, shared: CvShared = {}): Promise<CvResult> {
  const started = Date.now();
  const out = resolve(options.out);
  const progress = shared.progress ?? createProgress(process.stderr, quiet);
  const executor = shared.executor ?? localExecutor(shared.featureStore ?? (options.featureDir ? createDiskFeatureStore(options.featureDir) : createFeatureStore()), progress, quiet);
  const folds = options.folds ?? Array.from({ length: countFolds(options.data) }, (_, k) => k);
  writeJsonAtomicSync(join(out, 'config.json'), { ...options, out, kind: 'cv', folds });
  const summaryPath = (fold: number): string => join(out, `fold-${fold}`, SUMMARY_FILE);
  // Finished folds are kept; the others are trained here or by queue workers (fold_executor.ts).
  const kept = new Set(folds.filter((fold) => existsSync(summaryPath(fold))));
  for (const fold of kept) progress.log(`fold ${fold}: finished earlier, kept (${join(out, `fold-${fold}`)})`);
  const trainOptions = trainOptionsOf(options);
  await executor.run(
    folds.filter((fold) => !kept.has(fold)).map((fold) => ({ label: `fold ${fold + 1}/${folds.length}`, train: { ...trainOptions, fold, out: join(out, `fold-${fold}`) } })),
  );
  const results: CvResult['folds'] = folds.map((fold) => ({
    fold,
    kept: kept.has(fold),
    summary: readJsonFile<CvResult['folds'][number]['summary']>(summaryPath(fold), { what: 'the fold summary', hint: `delete it to train fold ${fold} again` }),
  }));

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
  const collected = collectRun(out, undefined, { folds: true });
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
