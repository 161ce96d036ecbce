// `pocovid cv`: every fold, out-of-fold predictions, reports and the fold ensemble.
import type { Command } from 'commander';
import { Option } from 'commander';
import { runCrossValidation } from '../train/cv.js';
import { evaluateRun } from '../eval/report.js';
import { addTrainOptions, toConfigInput, type ParsedTrainOptions } from './train_options.js';

export function register(program: Command): void {
  addTrainOptions(
    program
      .command('cv')
      .description('cross-validation over every fold of the dataset; writes predictions.csv, reports and an ensemble')
      .option('--folds <list>', 'only these folds, comma-separated')
      .addOption(new Option('--ensemble <mode>', 'how the fold ensemble combines its members').choices(['mean', 'vote']).default('mean')),
  ).action(async (opts: ParsedTrainOptions & { folds?: string; ensemble: 'mean' | 'vote' }) => {
    const result = await runCrossValidation(
      {
        ...toConfigInput(opts),
        folds: opts.folds ? opts.folds.split(',').map((f) => Number.parseInt(f, 10)) : undefined,
        ensembleAggregation: opts.ensemble,
      },
      opts.quiet,
    );
    const { written } = await evaluateRun(result.out);
    const report = written.reportMd;
    console.log(`run: ${result.out} (${result.folds.length} folds, ${result.wallSeconds.toFixed(0)} s)`);
    console.log(`predictions: ${result.predictions}`);
    console.log(`ensemble: ${result.ensemble}`);
    console.log(`report: ${report}`);
  });
}
