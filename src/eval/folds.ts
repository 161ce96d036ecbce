// Mean ± sample standard deviation of the scalar metrics over folds.
import type { AveragedMetrics, ClassMetrics, FoldSummary, MeanStd, Metrics } from './types.js';

/** Mean and sample std (n − 1) of the finite values; std 0 for one value, NaN mean for none. */
export function meanStd(values: readonly (number | null)[]): MeanStd {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const n = xs.length;
  const mean = n === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / n;
  const std = n < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  return { mean, std, n };
}

const CLASS_KEYS: (keyof ClassMetrics)[] = ['precision', 'recall', 'specificity', 'f1', 'support'];
const AVERAGED_KEYS: (keyof AveragedMetrics)[] = ['precision', 'recall', 'f1'];

/**
 * A class's precision/recall/specificity/F1 are averaged over the folds where that class has
 * support: in a fold without it, its recall is 0 by convention, which says nothing about the model.
 * Support itself is averaged over all folds. AUCs that are undefined in a fold are skipped.
 */
export function summarizeFolds(folds: readonly Metrics[]): FoldSummary | null {
  if (folds.length === 0) return null;
  const classes = folds[0]!.classes;
  const perClass: FoldSummary['perClass'] = {};
  for (const c of classes) {
    const entry = {} as Record<keyof ClassMetrics, MeanStd>;
    for (const key of CLASS_KEYS) {
      entry[key] = meanStd(folds.map((f) => (key === 'support' || f.perClass[c]!.support > 0 ? f.perClass[c]![key] : null)));
    }
    perClass[c] = entry;
  }
  const macro = {} as Record<keyof AveragedMetrics, MeanStd>;
  for (const key of AVERAGED_KEYS) macro[key] = meanStd(folds.map((f) => f.macro[key]));
  const auc: Record<string, MeanStd> = {};
  for (const key of Object.keys(folds[0]!.auc)) auc[key] = meanStd(folds.map((f) => f.auc[key] ?? null));
  return {
    accuracy: meanStd(folds.map((f) => f.accuracy)),
    balancedAccuracy: meanStd(folds.map((f) => f.balancedAccuracy)),
    mcc: meanStd(folds.map((f) => f.mcc)),
    perClass,
    macro,
    auc,
  };
}
