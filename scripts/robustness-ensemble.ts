// The stability of an ensemble no frame was trained on (src/robustness/ensemble.ts): `pocovid
// robustness` on several fold seeds of one recipe, each folder's frames.csv, averaged. Prints, per
// perturbation, each fold seed's figures and the ensemble's, counted by the report's own rule, the
// clean accuracy and how many videos sit near the decision boundary.
//   npx tsx scripts/robustness-ensemble.ts DIR DIR [DIR...]   (DIR: robustness --out folders)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { averageRecords } from '../src/robustness/ensemble.js';
import { parseFramesCsv } from '../src/robustness/frames_csv.js';
import { summarisePerturbation, videosNearBoundary, type FrameRecord, type PerturbationSummary } from '../src/robustness/stats.js';

const dirs = process.argv.slice(2);
if (dirs.length < 2) throw new Error('usage: npx tsx scripts/robustness-ensemble.ts DIR DIR [DIR...]  (robustness output folders holding frames.csv)');
const runs = dirs.map((dir) => {
  const file = join(dir, 'frames.csv');
  return { name: dir, ...parseFramesCsv(readFileSync(file, 'utf8'), file) };
});
const { classes } = runs[0]!;
for (const r of runs) if (r.classes.join() !== classes.join()) throw new Error(`${r.name}: classes ${r.classes.join(', ')} differ from ${classes.join(', ')}`);
const ensemble = averageRecords(runs);

const names = Object.keys(ensemble[0]!.perturbed);
const summary = (records: readonly FrameRecord[], name: string): PerturbationSummary => summarisePerturbation({ name, description: '' }, records, classes, 'mean');
const cell = (s: PerturbationSummary): string => `${(100 * s.frameFlipRate!).toFixed(2)}% / ${s.videoFlips} / ${s.meanTopProbChange!.toFixed(4)}`;
const row = (what: string, f: (records: readonly FrameRecord[]) => string): void =>
  console.log(`| ${what} | ${runs.map((r) => f(r.records)).join(' | ')} | ${f(ensemble)} |`);

console.log(`${ensemble.length} frames; each cell: frame flips / video flips / mean top-prob. change`);
console.log(`| perturbation | ${dirs.join(' | ')} | ensemble of ${dirs.length} |`);
console.log(`|---|${dirs.map(() => '---|').join('')}---|`);
for (const name of names) row(name, (records) => cell(summary(records, name)));
row('clean accuracy (frame, video)', (records) => {
  const { frame, video } = summary(records, names[0]!).accuracy;
  return `${frame.clean!.toFixed(3)}, ${video.clean!.toFixed(3)}`;
});
for (const within of [0.02, 0.05]) row(`videos within ${within} of the boundary`, (records) => String(videosNearBoundary(records, classes, within)));
