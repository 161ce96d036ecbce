// `pocovid cv`: every fold, out-of-fold predictions, reports and the fold ensemble; with
// --fold-seeds, the whole cv once per fold assignment and the mean ± std over them.
import type { Command } from 'commander';
import { Option } from 'commander';
import { runRepeatedCrossValidation } from '../train/cv.js';
import { trainConfigSchema } from '../train/config.js';
import { integer, listOf, schemaNumber } from './options.js';
import { addTrainOptions, toConfigInput, type ParsedTrainOptions } from './train_options.js';

export function register(program: Command): void {
  addTrainOptions(
    program
      .command('cv')
      .description('cross-validation over every fold of the dataset; writes predictions.csv, reports and an ensemble')
      .option('--folds <list>', 'only these folds, comma-separated', listOf(schemaNumber(trainConfigSchema.shape.fold), 'a comma-separated list of fold numbers'))
      .option('--fold-seeds <list>', 'repeat the cv over these fold assignments (data refold seeds) and report mean ± std, e.g. 0,1,2', listOf(integer(0), 'a comma-separated list of seeds'))
      .addOption(new Option('--ensemble <mode>', 'how the fold ensemble combines its members').choices(['mean', 'vote']).default('mean')),
  ).action(async (opts: ParsedTrainOptions & { folds?: number[]; foldSeeds?: number[]; ensemble: 'mean' | 'vote' }) => {
    const result = await runRepeatedCrossValidation(
      {
        ...toConfigInput(opts),
        folds: opts.folds,
        foldSeeds: opts.foldSeeds,
        ensembleAggregation: opts.ensemble,
      },
      opts.quiet,
    );
    for (const run of result.runs) {
      console.log(`run: ${run.out} (fold seed ${run.seed}, ${run.folds.length} folds, ${run.wallSeconds.toFixed(0)} s)`);
      console.log(`predictions: ${run.predictions}`);
      console.log(`ensemble: ${run.ensemble}`);
      console.log(`report: ${run.report}`);
    }
    if (result.repeats) console.log(`repeats: ${result.repeats.markdown} (${result.runs.length} fold seeds, ${result.wallSeconds.toFixed(0)} s)`);
  });
}
