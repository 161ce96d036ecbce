// `pocovid cv`: every fold, out-of-fold predictions, reports and the fold ensemble; with
// --fold-seeds, the whole cv once per fold assignment and the mean ± std over them.
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { defaultFeatureDir, withQueueExecutor } from '../queue/executor.js';
import { runRepeatedCrossValidation } from '../train/cv.js';
import { createProgress } from '../train/progress.js';
import { auditBeforeCrossValidation } from './leakage_gate.js';
import { addTrainOptions, toConfigInput, type ParsedTrainOptions } from './train_options.js';

export function seedList(value: string): number[] {
  const seeds = value.split(',').map((s) => Number(s.trim()));
  if (!seeds.length || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new InvalidArgumentError(`"${value}": use whole numbers ≥ 0 separated by commas`);
  return seeds;
}

export function register(program: Command): void {
  addTrainOptions(
    program
      .command('cv')
      .description('cross-validation over every fold of the dataset; writes predictions.csv, reports and an ensemble')
      .option('--folds <list>', 'only these folds, comma-separated')
      .option('--no-refit', 'do not train the recipe once more on every frame after the cv (the run then has only its fold models)')
      .option('--fold-seeds <list>', 'repeat the cv over these fold assignments (data refold seeds) and report mean ± std, e.g. 0,1,2', seedList)
      .addOption(new Option('--ensemble <mode>', 'how the fold ensemble combines its members').choices(['mean', 'vote']).default('mean'))
      .option('--allow-leakage', 'run even when `data audit` finds the folds leak (patients or copies across folds); results will be optimistic')
      .option('--queue <url>', 'train the folds as jobs on this Redis queue (run `pocovid worker` on machines that see the dataset and --out at the same path); pools and reports here as a local run does')
      .option('--feature-dir <dir>', 'keep the frozen features in this folder as well as in memory, for workers and later runs (default with --queue: <out>/features)'),
  ).action(async (opts: ParsedTrainOptions & { folds?: string; foldSeeds?: number[]; refit: boolean; ensemble: 'mean' | 'vote'; allowLeakage?: boolean; queue?: string; featureDir?: string }) => {
      const featureDir = opts.featureDir ?? (opts.queue ? defaultFeatureDir(opts.out) : undefined);
      const result = await withQueueExecutor(opts.queue, featureDir, createProgress(process.stderr, opts.quiet), (executor) =>
        runRepeatedCrossValidation(
          {
            ...toConfigInput(opts),
            folds: opts.folds ? opts.folds.split(',').map((f) => Number.parseInt(f, 10)) : undefined,
            foldSeeds: opts.foldSeeds,
            refit: opts.refit,
            ensembleAggregation: opts.ensemble,
            featureDir,
          },
          opts.quiet,
          // Every fold assignment the cv trains on (each --fold-seeds one too) is audited first.
          { executor, checkDataset: (data, runOut) => auditBeforeCrossValidation(data, runOut, opts.allowLeakage ?? false, opts.quiet) },
        ),
    );
    for (const run of result.runs) {
      console.log(`run: ${run.out} (fold seed ${run.seed}, ${run.folds.length} folds, ${run.wallSeconds.toFixed(0)} s)`);
      console.log(`predictions: ${run.predictions}`);
      console.log(`ensemble: ${run.ensemble}`);
      console.log(`report: ${run.report}`);
    }
    if (result.refit) console.log(`model (every frame; predict, export and serve use it): ${result.refit.model}`);
    if (result.repeats) console.log(`repeats: ${result.repeats.markdown} (${result.runs.length} fold seeds, ${result.wallSeconds.toFixed(0)} s)`);
  });
}
