// The stability of an ensemble no frame was trained on: `pocovid robustness` on several fold seeds
// of one recipe scores every test frame with, per fold seed, the one model whose training folds did
// not hold its patient. Averaging those models' probabilities, clean and perturbed, gives each
// frame an ensemble that never saw it (the page's ensemble of one fold seed's five members has seen
// every dataset frame through four of them, so it cannot be measured on this data). Prints, per
// perturbation, each fold seed's figures and the ensemble's, counted by the report's own rule.
//   npx tsx scripts/robustness-ensemble.ts DIR DIR [DIR...]   (DIR: robustness --out folders)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFramesCsv } from '../src/robustness/frames_csv.js';
import { summarisePerturbation, type FrameRecord, type PerturbationSummary } from '../src/robustness/stats.js';

const dirs = process.argv.slice(2);
if (dirs.length < 2) throw new Error('usage: npx tsx scripts/robustness-ensemble.ts DIR DIR [DIR...]  (robustness output folders holding frames.csv)');
const runs = dirs.map((dir) => {
  const file = join(dir, 'frames.csv');
  return { dir, ...parseFramesCsv(readFileSync(file, 'utf8'), file) };
});
const { classes } = runs[0]!;
for (const r of runs) if (r.classes.join() !== classes.join()) throw new Error(`${r.dir}: classes ${r.classes.join(', ')} differ from ${classes.join(', ')}`);

const byPath = runs.map((r) => new Map(r.records.map((x) => [x.path, x])));
const mean = (vectors: readonly (readonly number[])[]): number[] => vectors[0]!.map((_, k) => vectors.reduce((a, v) => a + v[k]!, 0) / vectors.length);
const ensemble: FrameRecord[] = runs[0]!.records.map((first) => {
  const all = byPath.map((m, i) => {
    const x = m.get(first.path);
    if (!x || x.label !== first.label || x.source !== first.source) throw new Error(`${dirs[i]}: frame ${first.path} missing or with another source or label`);
    return x;
  });
  const perturbed: FrameRecord['perturbed'] = {};
  for (const [name, p] of Object.entries(first.perturbed)) {
    const views = all.map((x, i) => x.perturbed[name] ?? (() => { throw new Error(`${dirs[i]}: frame ${first.path} has no ${name}`); })());
    perturbed[name] = { ...p, probs: mean(views.map((v) => v.probs)) };
  }
  // One fold number per frame is all the counting needs; the first run's.
  return { ...first, clean: mean(all.map((x) => x.clean)), perturbed };
});
for (const [i, m] of byPath.entries()) if (m.size !== ensemble.length) throw new Error(`${dirs[i]}: ${m.size} frames, the first folder ${ensemble.length}`);

const names = Object.keys(ensemble[0]!.perturbed);
const cell = (s: PerturbationSummary): string => `${(100 * s.frameFlipRate!).toFixed(2)}% / ${s.videoFlips} / ${s.meanTopProbChange!.toFixed(4)}`;
console.log(`${ensemble.length} frames; each cell: frame flips / video flips / mean top-prob. change; clean accuracy frame, video`);
console.log(`| perturbation | ${dirs.map((d) => d).join(' | ')} | ensemble of ${dirs.length} |`);
console.log(`|---|${dirs.map(() => '---|').join('')}---|`);
for (const name of names) {
  const each = runs.map((r) => summarisePerturbation({ name, description: '' }, r.records, classes, 'mean'));
  const together = summarisePerturbation({ name, description: '' }, ensemble, classes, 'mean');
  console.log(`| ${name} | ${each.map(cell).join(' | ')} | ${cell(together)} |`);
}
const clean = (records: readonly FrameRecord[]): string => {
  const s = summarisePerturbation({ name: names[0]!, description: '' }, records, classes, 'mean');
  return `${s.accuracy.frame.clean!.toFixed(3)}, ${s.accuracy.video.clean!.toFixed(3)}`;
};
console.log(`| clean accuracy (frame, video) | ${runs.map((r) => clean(r.records)).join(' | ')} | ${clean(ensemble)} |`);

/** Videos whose clean mean probabilities have their top two classes within `within` of each other. */
const nearBoundary = (records: readonly FrameRecord[], within: number): number => {
  const bySource = new Map<string, number[][]>();
  for (const r of records) bySource.set(r.source, [...(bySource.get(r.source) ?? []), r.clean]);
  return [...bySource.values()].filter((frames) => {
    const [top, second] = mean(frames).sort((a, b) => b - a);
    return top! - second! < within;
  }).length;
};
for (const within of [0.02, 0.05]) {
  console.log(`| videos within ${within} of the boundary | ${runs.map((r) => nearBoundary(r.records, within)).join(' | ')} | ${nearBoundary(ensemble, within)} |`);
}
