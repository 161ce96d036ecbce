// The prediction-set figures of an evaluation: each fold's test rows get the sets of that fold's
// own calibration, per level (frame, video, exam); the pooled figures add up the folds' outcomes
// (every example judged by the threshold of the model that predicted it).
import { PocovidError } from '../errors.js';
import { CONFORMAL_LEVELS, type ConformalCalibration } from './conformal.js';
import { coverageByLevel } from './conformal_rows.js';
import type { ConformalReport, FoldSetSummary, PredictionRow, SetSummary } from './types.js';

/** Adds up per-fold set outcomes into one summary. */
export function poolSetSummaries(folds: readonly SetSummary[]): SetSummary {
  const n = folds.reduce((a, f) => a + f.n, 0);
  const width = Math.max(0, ...folds.map((f) => f.setSizes.length));
  const setSizes = new Array<number>(width).fill(0);
  let covered = 0;
  let singletons = 0;
  let singletonsRight = 0;
  for (const f of folds) {
    f.setSizes.forEach((count, size) => (setSizes[size]! += count));
    covered += Math.round(f.coverage * f.n);
    const own = f.setSizes[1] ?? 0;
    singletons += own;
    if (own > 0) singletonsRight += Math.round(f.singletonAccuracy * own);
  }
  const sizeSum = setSizes.reduce((a, count, size) => a + count * size, 0);
  return {
    n,
    coverage: n ? covered / n : Number.NaN,
    meanSetSize: n ? sizeSum / n : Number.NaN,
    setSizes,
    singletonRate: n ? singletons / n : Number.NaN,
    singletonAccuracy: singletons ? singletonsRight / singletons : Number.NaN,
  };
}

/**
 * Set figures for rows from several folds, each fold with its own calibration. `coverage`
 * overrides the calibrations' stored target. Folds without a calibration are listed, not scored.
 */
export function evaluateConformal(
  rows: readonly PredictionRow[],
  classes: readonly string[],
  calibrations: ReadonlyMap<number, ConformalCalibration>,
  coverage?: number,
): ConformalReport | undefined {
  const folds = [...new Set(rows.map((r) => r.fold))].sort((a, b) => a - b);
  const calibrated = folds.filter((f) => calibrations.has(f));
  if (calibrated.length === 0) return undefined;
  const first = calibrations.get(calibrated[0]!)!;
  const methods = new Set(calibrated.map((f) => calibrations.get(f)!.method));
  if (methods.size > 1) throw new PocovidError(`folds are calibrated with different scores (${[...methods].join(', ')}); their sets cannot be pooled`);
  const targets = new Set(calibrated.map((f) => coverage ?? calibrations.get(f)!.coverage));
  if (targets.size > 1) throw new PocovidError(`folds are calibrated for different coverages (${[...targets].join(', ')}); pass one with --coverage`);
  const report: ConformalReport = {
    coverage: [...targets][0]!,
    method: first.method,
    calibratedOn: [...new Set(calibrated.map((f) => calibrations.get(f)!.calibratedOn))].join(', '),
    levels: {},
    foldsWithoutCalibration: folds.filter((f) => !calibrations.has(f)),
  };
  const perLevel = new Map<(typeof CONFORMAL_LEVELS)[number], FoldSetSummary[]>();
  for (const fold of calibrated) {
    const byLevel = coverageByLevel(calibrations.get(fold)!, rows.filter((r) => r.fold === fold), classes, report.coverage);
    for (const level of CONFORMAL_LEVELS) {
      const s = byLevel[level];
      if (!s) continue;
      const { threshold, calibrationSize, ...summary } = s;
      const entry: FoldSetSummary = { fold, ...summary, calibrationSize, threshold: Number.isFinite(threshold) ? threshold : null };
      perLevel.set(level, [...(perLevel.get(level) ?? []), entry]);
    }
  }
  for (const [level, foldSummaries] of perLevel) report.levels[level] = { pooled: poolSetSummaries(foldSummaries), folds: foldSummaries };
  return report;
}
