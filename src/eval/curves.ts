// ROC and precision-recall curves, one-vs-rest, with AUC (trapezoid) and average precision.
// Rows with equal scores are crossed in one step: the curve moves diagonally over a tie, so
// a classifier that gives every row the same score gets AUC 0.5, whatever the row order.
import type { Curves, PrCurve, RocCurve } from './types.js';

interface ThresholdCounts {
  thresholds: number[];
  /** Cumulative true and false positives when everything scoring >= threshold is called positive. */
  tp: number[];
  fp: number[];
  positives: number;
  negatives: number;
}

function countByThreshold(scores: readonly number[], positive: readonly boolean[]): ThresholdCounts {
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const thresholds: number[] = [];
  const tp: number[] = [];
  const fp: number[] = [];
  let tpCount = 0;
  let fpCount = 0;
  for (let r = 0; r < order.length; r++) {
    const i = order[r]!;
    if (positive[i]) tpCount++;
    else fpCount++;
    const next = order[r + 1];
    // Emit a point only after the last row of a run of equal scores.
    if (next === undefined || scores[next] !== scores[i]) {
      thresholds.push(scores[i]!);
      tp.push(tpCount);
      fp.push(fpCount);
    }
  }
  return { thresholds, tp, fp, positives: tpCount, negatives: fpCount };
}

export function trapezoidArea(x: readonly number[], y: readonly number[]): number {
  let area = 0;
  for (let i = 1; i < x.length; i++) area += ((x[i]! - x[i - 1]!) * (y[i]! + y[i - 1]!)) / 2;
  return area;
}

/** ROC of one binary problem. AUC is NaN when there are no positives or no negatives (it is undefined). */
export function rocCurve(scores: readonly number[], positive: readonly boolean[]): RocCurve {
  const c = countByThreshold(scores, positive);
  const fpr = [0, ...c.fp.map((v) => (c.negatives === 0 ? Number.NaN : v / c.negatives))];
  const tpr = [0, ...c.tp.map((v) => (c.positives === 0 ? Number.NaN : v / c.positives))];
  const auc = c.positives === 0 || c.negatives === 0 ? Number.NaN : trapezoidArea(fpr, tpr);
  return { fpr, tpr, thresholds: [Number.POSITIVE_INFINITY, ...c.thresholds], auc };
}

/**
 * Precision-recall curve of one binary problem, starting at (recall 0, precision 1).
 * Average precision = Σ (R_n − R_{n−1}) P_n over thresholds (scikit-learn's definition, no
 * interpolation); NaN when there are no positives.
 */
export function prCurve(scores: readonly number[], positive: readonly boolean[]): PrCurve {
  const c = countByThreshold(scores, positive);
  const recall = [0];
  const precision = [1];
  let ap = 0;
  for (let i = 0; i < c.thresholds.length; i++) {
    const r = c.positives === 0 ? Number.NaN : c.tp[i]! / c.positives;
    const p = c.tp[i]! / (c.tp[i]! + c.fp[i]!);
    ap += (r - recall[recall.length - 1]!) * p;
    recall.push(r);
    precision.push(p);
  }
  return { recall, precision, thresholds: [Number.POSITIVE_INFINITY, ...c.thresholds], averagePrecision: c.positives === 0 ? Number.NaN : ap };
}

/**
 * TPR of the curve at each FPR in the ascending `grid`: the last (highest) point at or before x,
 * interpolated along the segment that crosses x (vertical averaging, Fawcett 2006). Linear time.
 */
function tprAt(curve: RocCurve, grid: readonly number[]): number[] {
  const { fpr, tpr } = curve;
  let i = 0;
  return grid.map((x) => {
    while (i + 1 < fpr.length && fpr[i + 1]! <= x) i++;
    if (i + 1 < fpr.length && fpr[i]! < x) {
      const t = (x - fpr[i]!) / (fpr[i + 1]! - fpr[i]!);
      return tpr[i]! + t * (tpr[i + 1]! - tpr[i]!);
    }
    return tpr[i]!;
  });
}

/**
 * Per-class one-vs-rest curves plus "micro" (every (row, class) pair pooled) and, for ROC, "macro"
 * (the class curves averaged vertically; its `auc` is the mean of the class AUCs, the number
 * reported as the macro AUC).
 */
export function computeCurves(probs: readonly (readonly number[])[], trueIdx: readonly number[], classes: readonly string[]): Curves {
  const roc: Record<string, RocCurve> = {};
  const pr: Record<string, PrCurve> = {};
  const allScores: number[] = [];
  const allPositive: boolean[] = [];
  classes.forEach((name, k) => {
    const scores = probs.map((p) => p[k]!);
    const positive = trueIdx.map((t) => t === k);
    roc[name] = rocCurve(scores, positive);
    pr[name] = prCurve(scores, positive);
    allScores.push(...scores);
    allPositive.push(...positive);
  });
  roc.micro = rocCurve(allScores, allPositive);
  pr.micro = prCurve(allScores, allPositive);

  const defined = classes.map((c) => roc[c]!).filter((c) => Number.isFinite(c.auc));
  const grid = [...new Set(defined.flatMap((c) => c.fpr))].sort((a, b) => a - b);
  const curvesTpr = defined.map((c) => tprAt(c, grid));
  roc.macro = {
    fpr: grid,
    tpr: grid.map((_, i) => curvesTpr.reduce((a, t) => a + t[i]!, 0) / Math.max(1, curvesTpr.length)),
    thresholds: grid.map(() => Number.NaN),
    auc: defined.length === 0 ? Number.NaN : defined.reduce((a, c) => a + c.auc, 0) / defined.length,
  };
  return { roc, pr };
}
