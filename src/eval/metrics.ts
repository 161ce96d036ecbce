// Classification metrics from a confusion matrix. Pure arithmetic, no TF.
//
// Conventions (documented because libraries differ):
// - A ratio whose denominator is 0 is 0 (e.g. the precision of a class never predicted).
// - Balanced accuracy is the mean recall over classes that have support (true examples); a class
//   absent from the truth cannot be recalled, so it is left out rather than counted as 0.
// - Macro averages run over the classes that occur in the truth or in the predictions (as
//   scikit-learn does when it infers the labels); weighted averages weight by support.
// - MCC is Gorodkin's multiclass R_K, which is the usual MCC for two classes.
import type { AveragedMetrics, ClassMetrics } from './types.js';

export function safeDivide(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

/** Index of the largest value; the first one wins a tie. */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** rows = true class index, columns = predicted class index. */
export function confusionMatrix(trueIdx: readonly number[], predIdx: readonly number[], numClasses: number): number[][] {
  if (trueIdx.length !== predIdx.length) throw new Error(`confusionMatrix: ${trueIdx.length} labels but ${predIdx.length} predictions`);
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < trueIdx.length; i++) matrix[trueIdx[i]!]![predIdx[i]!]! += 1;
  return matrix;
}

export interface MatrixMetrics {
  n: number;
  accuracy: number;
  balancedAccuracy: number;
  mcc: number;
  perClass: ClassMetrics[];
  macro: AveragedMetrics;
  weighted: AveragedMetrics;
}

export function metricsFromConfusion(matrix: readonly (readonly number[])[]): MatrixMetrics {
  const k = matrix.length;
  const trueTotals = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  const predTotals = Array.from({ length: k }, (_, j) => matrix.reduce((a, row) => a + row[j]!, 0));
  const n = trueTotals.reduce((a, b) => a + b, 0);
  const correct = matrix.reduce((a, row, i) => a + row[i]!, 0);

  const perClass: ClassMetrics[] = matrix.map((row, i) => {
    const tp = row[i]!;
    const fn = trueTotals[i]! - tp;
    const fp = predTotals[i]! - tp;
    const tn = n - tp - fn - fp;
    const precision = safeDivide(tp, tp + fp);
    const recall = safeDivide(tp, tp + fn);
    return {
      precision,
      recall,
      specificity: safeDivide(tn, tn + fp),
      f1: safeDivide(2 * precision * recall, precision + recall),
      support: trueTotals[i]!,
    };
  });

  const supported = perClass.filter((c) => c.support > 0);
  const present = perClass.filter((_, i) => trueTotals[i]! > 0 || predTotals[i]! > 0);
  const mean = (items: ClassMetrics[], key: keyof AveragedMetrics): number =>
    safeDivide(items.reduce((a, c) => a + c[key], 0), items.length);
  const weightedMean = (key: keyof AveragedMetrics): number =>
    safeDivide(perClass.reduce((a, c) => a + c[key] * c.support, 0), n);

  return {
    n,
    accuracy: safeDivide(correct, n),
    balancedAccuracy: mean(supported, 'recall'),
    mcc: gorodkinMcc(correct, n, trueTotals, predTotals),
    perClass,
    macro: { precision: mean(present, 'precision'), recall: mean(present, 'recall'), f1: mean(present, 'f1') },
    weighted: { precision: weightedMean('precision'), recall: weightedMean('recall'), f1: weightedMean('f1') },
  };
}

/** R_K = (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)); 0 when either factor is 0. */
function gorodkinMcc(correct: number, n: number, trueTotals: number[], predTotals: number[]): number {
  const dot = trueTotals.reduce((a, t, i) => a + t * predTotals[i]!, 0);
  const predSq = predTotals.reduce((a, p) => a + p * p, 0);
  const trueSq = trueTotals.reduce((a, t) => a + t * t, 0);
  const denominator = Math.sqrt((n * n - predSq) * (n * n - trueSq));
  return safeDivide(correct * n - dot, denominator);
}
