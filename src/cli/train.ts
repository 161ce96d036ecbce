// `pocovid train`: one fold.
import type { Command } from 'commander';
import { trainFold } from '../train/train_fold.js';
import { evaluateRun } from '../eval/report.js';
import { addTrainOptions, toConfigInput, trainOption, type ParsedTrainOptions } from './train_options.js';

export function register(program: Command): void {
  addTrainOptions(
    program
      .command('train')
      .description('train a model on one fold (the other folds train it; a patient-grouped validation split selects the checkpoint)')
      .addOption(trainOption('--fold <k>', 'test fold', 'fold').default(0)),
  ).action(async (opts: ParsedTrainOptions & { fold: number }) => {
    const result = await trainFold({ ...toConfigInput(opts), fold: opts.fold }, { quiet: opts.quiet });
    const { written } = await evaluateRun(result.out);
    const report = written.reportMd;
    console.log(`run: ${result.out}`);
    console.log(`best epoch ${result.bestEpoch + 1}, validation balanced accuracy ${result.bestValBalancedAccuracy.toFixed(3)}`);
    console.log(`report: ${report}`);
  });
}
