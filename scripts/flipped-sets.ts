// The prediction sets of the inputs whose label flips under `pocovid robustness`: for each source
// that flipped under any perturbation, its clean video-level probabilities (the mean of its frames,
// from the run's predictions.csv) and the set its fold's model gives them (video level; frame level
// for a still image), with that fold's own calibration.
//   npx tsx scripts/flipped-sets.ts RUN [DIR]   (RUN: a cv run; DIR: robustness's --out, default RUN/robustness)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { predictionSetOf } from '../src/decision/prediction_set.js';
import { readPredictionsCsv } from '../src/eval/csv.js';
import { aggregateVideos } from '../src/eval/video.js';
import { readModelMeta } from '../src/model_dir/model_dir.js';

const run = process.argv[2];
if (!run) throw new Error('usage: npx tsx scripts/flipped-sets.ts RUN [ROBUSTNESS_DIR]');
const robustnessDir = process.argv[3] ?? join(run, 'robustness');
const report = JSON.parse(readFileSync(join(robustnessDir, 'robustness.json'), 'utf8')) as { perturbations: { name: string; flippedVideos: string[] }[] };
const bySource = new Map<string, string[]>();
for (const p of report.perturbations) for (const source of p.flippedVideos) bySource.set(source, [...(bySource.get(source) ?? []), p.name]);
const { rows, classes } = readPredictionsCsv(join(run, 'predictions.csv'));
// Each video's probabilities by the evaluation's rule (the mean of its frames).
const videos = new Map(aggregateVideos(rows, classes, 'mean').map((v) => [v.source, v]));
console.log('| source | label | clean probabilities (' + classes.join(' / ') + ') | flips under | set (level, calibration size) |');
console.log('|---|---|---|---|---|');
for (const [source, perturbations] of bySource) {
  const video = videos.get(source)!;
  const conformal = readModelMeta(join(run, `fold-${video.fold}`, 'model')).conformal;
  const level = rows.filter((r) => r.source === source).length === 1 ? 'frame' : 'video';
  const set = conformal ? predictionSetOf(conformal, level, video.probs, classes) : undefined;
  const shown = set ? `${set.classes.join(' or ')} (${level}, ${set.calibrationSize})` : 'no calibration';
  console.log(`| ${source} | ${video.label} | ${video.probs.map((p) => p.toFixed(3)).join(' / ')} | ${perturbations.join(', ')} | ${shown} |`);
}
