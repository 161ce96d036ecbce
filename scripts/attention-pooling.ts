// The learned video decision (attention pooling, src/eval/learned_video.ts) against the mean rule
// on finished cv runs, for one or more penalties: video balanced accuracy and per-class video
// recall of each run and their mean over the runs (fold seeds).
//   npx tsx scripts/attention-pooling.ts runs/cv/seed-0 runs/cv/seed-1 runs/cv/seed-2 [--l2 1,0.1,0.01]
import { join } from 'node:path';
import { readPredictionsCsv } from '../src/eval/csv.js';
import { computeMetrics } from '../src/eval/evaluate.js';
import { learnedVideoDecision } from '../src/eval/learned_video.js';
import { aggregateVideos } from '../src/eval/video.js';
import type { Metrics } from '../src/eval/types.js';

const args = process.argv.slice(2);
const l2At = args.indexOf('--l2');
const penalties = l2At >= 0 ? args[l2At + 1]!.split(',').map(Number) : [1];
const runs = l2At >= 0 ? args.filter((_, i) => i !== l2At && i !== l2At + 1) : args;
if (runs.length === 0) {
  console.error("usage: npx tsx scripts/attention-pooling.ts <cv run, one fold seed's folder>… [--l2 1,0.1]");
  process.exit(2);
}

const rows: { rule: string; run: string; m: Metrics }[] = [];
let classes: string[] = [];
for (const run of runs) {
  const table = readPredictionsCsv(join(run, 'predictions.csv'));
  classes = table.classes;
  rows.push({ rule: 'mean', run, m: computeMetrics(aggregateVideos(table.rows, table.classes, 'mean'), table.classes).metrics });
  for (const l2 of penalties) {
    const learned = learnedVideoDecision(run, table.rows, table.classes, { l2 });
    if (!learned) throw new Error(`${run}: a fold has no calibration_predictions.csv, or its logistic.json does not say the file carries the class offsets (a run written before they did): run the cv again`);
    rows.push({ rule: `attention, l2 ${l2}`, run, m: computeMetrics(learned.videos, table.classes).metrics });
  }
}
const figures = (m: Metrics) => [m.balancedAccuracy, m.accuracy, ...classes.map((c) => m.perClass[c]!.recall)];
console.log(`| rule | run | video bal. acc. | video acc. | ${classes.map((c) => `${c} video recall`).join(' | ')} |`);
console.log(`|---|---|${'---:|'.repeat(2 + classes.length)}`);
for (const r of rows) console.log(`| ${r.rule} | ${r.run} | ${figures(r.m).map((v) => v.toFixed(3)).join(' | ')} |`);
for (const rule of [...new Set(rows.map((r) => r.rule))]) {
  const of = rows.filter((r) => r.rule === rule).map((r) => figures(r.m));
  const stat = of[0]!.map((_, k) => {
    const values = of.map((f) => f[k]!);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    return `${mean.toFixed(3)} ± ${Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length).toFixed(3)}`;
  });
  console.log(`| ${rule} | mean ± std of ${of.length} | ${stat.join(' | ')} |`);
}
