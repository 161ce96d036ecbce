// The invariance penalty's weight, judged on the training folds only: for each cv run (one fold
// seed's folder), each fold's logistic.json says, at the penalty the fold chose, the balanced
// accuracy of the training folds held out in turn and how their frames' augmented views move the
// decision (label flips, mean change of the top probability). No test fold is read.
//   npx tsx scripts/invariance-inner.ts runs/cv_inv0.001/seed-0 runs/cv_inv1/seed-0 …
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LOGISTIC_FILE, type LogisticHeadResult } from '../src/train/logistic_head.js';
import { readJsonFile } from '../src/util/json_file.js';

const runs = process.argv.slice(2);
if (runs.length === 0) {
  console.error('usage: npx tsx scripts/invariance-inner.ts <cv run, one fold seed\'s folder>…');
  process.exit(2);
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
console.log('| run | invariance | folds | inner balanced accuracy | inner view label flips | inner view top-prob. change | penalties chosen |');
console.log('|---|---:|---:|---:|---:|---:|---|');
for (const run of runs) {
  const logs: Omit<LogisticHeadResult, 'outOfFold'>[] = [];
  for (let fold = 0; existsSync(join(run, `fold-${fold}`)); fold++) {
    logs.push(readJsonFile<Omit<LogisticHeadResult, 'outOfFold'>>(join(run, `fold-${fold}`, LOGISTIC_FILE), { what: 'a logistic head log' }));
  }
  if (logs.length === 0) throw new Error(`${run}: no fold-<k>/${LOGISTIC_FILE}`);
  const chosen = logs.map((log) => log.grid.find((g) => g.penalty === log.penalty)!);
  const flips = chosen.map((g) => g.innerViewFlipRate);
  const changes = chosen.map((g) => g.innerViewTopProbChange);
  const shown = (values: (number | undefined)[], digits: number, scale = 1) => (values.every((v) => v !== undefined) ? (mean(values as number[]) * scale).toFixed(digits) : '–');
  console.log(
    `| ${run} | ${logs[0]!.invariance ?? 0} | ${logs.length} | ${mean(chosen.map((g) => g.innerBalancedAccuracy)).toFixed(3)} | ${shown(flips, 2, 100)}% | ${shown(changes, 4)} | ${logs.map((l) => l.penalty).join(', ')} |`,
  );
}
