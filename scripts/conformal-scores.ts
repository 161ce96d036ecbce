// The prediction sets a run's fold models would give with other scores or coverages, from the
// predictions they were calibrated on (fold-<k>/calibration_predictions.csv) and their test
// predictions: APS and RAPS at several λ, without training again. A research aid for choosing
// `--conformal`; the models' own calibrations are not touched.
//
// Usage: npx tsx scripts/conformal-scores.ts RUN [COVERAGE...]   (default coverages 0.9 0.8)
import { join } from 'node:path';
import { readPredictionsCsv } from '../src/eval/csv.js';
import { CALIBRATION_PREDICTIONS_FILE } from '../src/eval/conformal_io.js';
import { calibrateFromRows, coverageByLevel } from '../src/eval/conformal_rows.js';
import { runFoldDirs } from '../src/infer/model_dir.js';

const [run, ...coverageArgs] = process.argv.slice(2);
if (!run) {
  console.error('usage: npx tsx scripts/conformal-scores.ts RUN [COVERAGE...]');
  process.exit(2);
}
const coverages = coverageArgs.length > 0 ? coverageArgs.map(Number) : [0.9, 0.8];
// A cv run's folds, or a single-fold run's own folder.
const folds = runFoldDirs(run).map((f) => join(run, `fold-${f.fold}`));
const dirs = folds.length > 0 ? folds : [run];
const rules = [
  { method: 'aps' as const, lambda: 0 },
  { method: 'raps' as const, lambda: 0.01 },
  { method: 'raps' as const, lambda: 0.1 },
];
console.log('| score | coverage asked | level | coverage | mean set size | decided | accuracy when decided |');
console.log('|---|---:|---|---:|---:|---:|---:|');
for (const rule of rules) {
  for (const coverage of coverages) {
    // Outcomes added up over the folds, each fold with its own calibration.
    const sums = new Map<string, { n: number; covered: number; size: number; decided: number; right: number }>();
    for (const dir of dirs) {
      const calibration = readPredictionsCsv(join(dir, CALIBRATION_PREDICTIONS_FILE));
      const test = readPredictionsCsv(join(dir, 'predictions.csv'));
      const cal = calibrateFromRows(calibration.rows, calibration.classes, { method: rule.method, lambda: rule.lambda, coverage, calibratedOn: 'validation' });
      for (const [level, s] of Object.entries(coverageByLevel(cal, test.rows, test.classes))) {
        const t = sums.get(level) ?? { n: 0, covered: 0, size: 0, decided: 0, right: 0 };
        t.n += s!.n;
        t.covered += Math.round(s!.coverage * s!.n);
        t.size += s!.meanSetSize * s!.n;
        const decided = s!.setSizes[1] ?? 0;
        t.decided += decided;
        t.right += decided > 0 ? Math.round(s!.singletonAccuracy * decided) : 0;
        sums.set(level, t);
      }
    }
    for (const [level, t] of sums) {
      const name = rule.method === 'aps' ? 'APS' : `RAPS λ ${rule.lambda}`;
      const acc = t.decided > 0 ? (t.right / t.decided).toFixed(3) : 'n/a';
      console.log(`| ${name} | ${coverage} | ${level === 'patient' ? 'exam' : level} | ${(t.covered / t.n).toFixed(3)} | ${(t.size / t.n).toFixed(2)} | ${(t.decided / t.n).toFixed(3)} | ${acc} |`);
    }
  }
}
