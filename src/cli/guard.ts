// `pocovid guard fit|eval`: the not-ultrasound guard on a dataset.
import type { Command } from 'commander';
import { openDataset } from '../data/dataset.js';
import { fitGuardOnRows } from '../guard/fit_dataset.js';
import { evaluateGuard, formatGuardEvaluation } from '../guard/evaluate.js';
import { writeJsonAtomicSync } from '../util/atomic.js';
import { PocovidError } from '../errors.js';

export function register(program: Command): void {
  const guard = program.command('guard').description('the not-ultrasound guard: fit it on a dataset, or measure how well it separates ultrasound from other pictures');
  guard
    .command('fit')
    .description('fit the guard on every frame of a dataset and write it as JSON')
    .requiredOption('--data <dataset>', 'dataset folder')
    .requiredOption('--out <file>', 'guard JSON to write')
    .action(async (o: { data: string; out: string }) => {
      const { rows } = openDataset(o.data);
      const stats = await fitGuardOnRows(o.data, rows);
      if (!stats) throw new PocovidError(`${o.data}: too few frames (${rows.length}) to fit the guard`);
      writeJsonAtomicSync(o.out, stats);
      console.log(`guard fitted on ${stats.fittedOn} frames, threshold ${stats.threshold.toFixed(2)}: ${o.out}`);
    });
  guard
    .command('eval')
    .description('real frames flagged (leave-one-fold-out) and non-ultrasound pictures let through')
    .requiredOption('--data <dataset>', 'dataset folder of real ultrasound frames')
    .option('--photos <dir>', 'a folder of photographs / other pictures (also tested converted to grey)')
    .option('--json <file>', 'also write the full result as JSON')
    .action(async (o: { data: string; photos?: string; json?: string }) => {
      const result = await evaluateGuard(o.data, { photos: o.photos });
      if (o.json) writeJsonAtomicSync(o.json, result);
      console.log(formatGuardEvaluation(result));
    });
}
