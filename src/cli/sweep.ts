// `pocovid sweep`: a grid of recipes, each a cross-validation (locally, or its folds on the Redis
// queue), ranked by the validation score the folds' own model selection saw; sweep.md / sweep.json.
import type { Command } from 'commander';
import { Option } from 'commander';
import { defaultFeatureDir, withQueueExecutor } from '../queue/executor.js';
import { shownQueueUrl } from '../queue/connection.js';
import { runSweep } from '../sweep/sweep.js';
import { createProgress } from '../train/progress.js';
import { trainConfigSchema } from '../train/config.js';
import { integer, listOf, schemaNumber } from './options.js';
import { auditBeforeCrossValidation } from './leakage_gate.js';
import { trainCommandLine } from './recipe_command.js';
import { addTrainOptions, toConfigInput, type ParsedTrainOptions } from './train_options.js';

export function register(program: Command): void {
  addTrainOptions(
    program
      .command('sweep')
      .description('cross-validate every recipe of a grid file and rank them by their folds\' validation score (never the test folds); writes sweep.md and sweep.json; re-running keeps finished folds')
      .requiredOption('--grid <file>', 'JSON grid: {"grid": {"colour": ["rgb", "grey"], ...}} (every combination) and/or {"recipes": [{"name": ..., "head": ...}]}; the command line gives every other option')
      .option('--folds <list>', 'only these folds, comma-separated', listOf(schemaNumber(trainConfigSchema.shape.fold), 'a comma-separated list of fold numbers'))
      .option('--fold-seeds <list>', 'repeat each recipe\'s cv over these fold assignments (data refold seeds), e.g. 0,1,2', listOf(integer(0), 'a comma-separated list of seeds'))
      .addOption(new Option('--ensemble <mode>', 'how each recipe\'s fold ensemble combines its members').choices(['mean', 'vote']).default('mean'))
      .option('--allow-leakage', 'run even when `data audit` finds the folds leak (patients or copies across folds); results will be optimistic')
      .option('--queue <url>', 'train every recipe\'s folds as jobs on this Redis queue (run `pocovid worker` on machines that see the dataset and --out at the same path)')
      .option('--feature-dir <dir>', 'the frozen features every recipe shares (default: <out>/features)'),
  ).action(async (opts: ParsedTrainOptions & { grid: string; folds?: number[]; foldSeeds?: number[]; ensemble: 'mean' | 'vote'; allowLeakage?: boolean; queue?: string; featureDir?: string }) => {
    const featureDir = opts.featureDir ?? defaultFeatureDir(opts.out);
    const progress = createProgress(process.stderr, opts.quiet);
    const result = await withQueueExecutor(opts.queue, featureDir, progress, (executor) =>
      runSweep(
        {
          base: {
            ...toConfigInput(opts),
            folds: opts.folds,
            foldSeeds: opts.foldSeeds,
            ensembleAggregation: opts.ensemble,
            featureDir,
          },
          grid: opts.grid,
          queue: opts.queue ? shownQueueUrl(opts.queue) : undefined,
          commandLine: (options, extra) => trainCommandLine('cv', options, extra),
        },
        opts.quiet,
        // The dataset is audited once (<out>/audit.json), and each refolded one (--fold-seeds), before training.
        { executor, checkDataset: (data, runOut) => auditBeforeCrossValidation(data, runOut, opts.allowLeakage ?? false, opts.quiet) },
      ),
    );
    for (const r of result.summary.recipes) {
      const score = r.score === undefined ? `not ranked: ${r.error ?? 'no score'}` : `validation bal. acc. ${r.score.toFixed(3)} ± ${r.std!.toFixed(3)}`;
      console.log(`${r.rank === undefined ? '-' : `${r.rank}.`} ${r.name}: ${score}`);
    }
    console.log(`sweep: ${result.markdown}`);
    console.log(`json: ${result.json}`);
    if (result.summary.best) console.log(`best recipe as a cv of its own (with its refit): ${result.summary.best.command}`);
    if (result.failed.length) {
      console.error(`pocovid sweep: ${result.failed.length} recipe(s) not ranked (see ${result.markdown})`);
      process.exitCode = 3;
    }
  });
}
