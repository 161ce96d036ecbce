import { describe, expect, it } from 'vitest';
import { computeCurves, prCurve, rocCurve } from '../../src/eval/curves.js';

/** AUC as the probability that a random positive outscores a random negative, ties counting ½. */
function mannWhitneyAuc(scores: number[], positive: boolean[]): number {
  let wins = 0;
  let pairs = 0;
  scores.forEach((s, i) => {
    if (!positive[i]) return;
    scores.forEach((t, j) => {
      if (positive[j]) return;
      pairs++;
      wins += s > t ? 1 : s === t ? 0.5 : 0;
    });
  });
  return wins / pairs;
}

describe('rocCurve', () => {
  it('gives AUC 0.5 and a single diagonal step when all scores are equal', () => {
    const roc = rocCurve([0.3, 0.3, 0.3, 0.3], [true, false, false, true]);
    expect(roc.auc).toBe(0.5);
    expect(roc.fpr).toEqual([0, 1]);
    expect(roc.tpr).toEqual([0, 1]);
  });

  it('gives AUC 1 for a perfect ranking and 0 for an inverted one', () => {
    const positive = [true, true, false, false];
    expect(rocCurve([0.9, 0.8, 0.2, 0.1], positive).auc).toBe(1);
    expect(rocCurve([0.1, 0.2, 0.8, 0.9], positive).auc).toBe(0);
  });

  it('matches a hand count: P 0.9, N 0.8, P 0.7, N 0.6 -> 3 of 4 pairs ordered', () => {
    const roc = rocCurve([0.9, 0.8, 0.7, 0.6], [true, false, true, false]);
    expect(roc.auc).toBeCloseTo(0.75, 12);
    expect(roc.fpr).toEqual([0, 0, 0.5, 0.5, 1]);
    expect(roc.tpr).toEqual([0, 0.5, 0.5, 1, 1]);
  });

  it('counts a tie between a positive and a negative as half, whatever the row order', () => {
    // pairs: (0.8,0.5N) 1, (0.8,0.2) 1, (0.5P,0.5N) ½, (0.5P,0.2) 1 -> 3.5/4
    const a = rocCurve([0.8, 0.5, 0.5, 0.2], [true, true, false, false]);
    const b = rocCurve([0.5, 0.2, 0.8, 0.5], [false, false, true, true]);
    expect(a.auc).toBeCloseTo(0.875, 12);
    expect(b.auc).toBeCloseTo(0.875, 12);
    expect(b.fpr).toEqual(a.fpr);
  });

  it('agrees with the Mann-Whitney statistic on scores with many ties', () => {
    const scores = [0.1, 0.2, 0.2, 0.3, 0.3, 0.3, 0.5, 0.5, 0.7, 0.9, 0.9, 0.1];
    const positive = [false, true, false, true, false, true, false, true, true, false, true, false];
    expect(rocCurve(scores, positive).auc).toBeCloseTo(mannWhitneyAuc(scores, positive), 12);
  });

  it('is undefined (NaN) without positives or without negatives', () => {
    expect(rocCurve([0.2, 0.4], [false, false]).auc).toBeNaN();
    expect(rocCurve([0.2, 0.4], [true, true]).auc).toBeNaN();
  });
});

describe('prCurve', () => {
  it('computes average precision by hand: Σ ΔR·P = 0.5·1 + 0.5·2/3', () => {
    const pr = prCurve([0.9, 0.8, 0.7, 0.6], [true, false, true, false]);
    expect(pr.recall).toEqual([0, 0.5, 0.5, 1, 1]);
    expect(pr.precision[0]).toBe(1);
    expect(pr.precision[3]).toBeCloseTo(2 / 3, 12);
    expect(pr.averagePrecision).toBeCloseTo(0.5 + 0.5 * (2 / 3), 12);
  });

  it('treats tied scores as one threshold: all equal -> AP = prevalence', () => {
    const pr = prCurve([0.5, 0.5, 0.5, 0.5], [true, false, false, false]);
    expect(pr.averagePrecision).toBeCloseTo(0.25, 12);
    expect(pr.recall).toEqual([0, 1]);
  });

  it('gives AP 1 for a perfect ranking', () => {
    expect(prCurve([0.9, 0.8, 0.2], [true, true, false]).averagePrecision).toBe(1);
  });
});

describe('computeCurves', () => {
  const classes = ['a', 'b', 'c'];
  it('gives micro and macro AUC 1 for a perfect three-class classifier', () => {
    const probs = [
      [0.8, 0.1, 0.1],
      [0.1, 0.8, 0.1],
      [0.1, 0.1, 0.8],
      [0.7, 0.2, 0.1],
    ];
    const curves = computeCurves(probs, [0, 1, 2, 0], classes);
    for (const key of [...classes, 'micro', 'macro']) expect(curves.roc[key]!.auc).toBe(1);
    expect(curves.pr.micro!.averagePrecision).toBe(1);
  });

  it('reports the macro AUC as the mean of class AUCs, skipping a class with no positives', () => {
    const probs = [
      [0.6, 0.3, 0.1],
      [0.5, 0.4, 0.1],
      [0.3, 0.6, 0.1],
      [0.4, 0.5, 0.1],
      [0.7, 0.2, 0.1],
    ];
    const trueIdx = [0, 1, 1, 0, 1];
    const curves = computeCurves(probs, trueIdx, classes);
    const aucA = mannWhitneyAuc(probs.map((p) => p[0]!), trueIdx.map((t) => t === 0));
    const aucB = mannWhitneyAuc(probs.map((p) => p[1]!), trueIdx.map((t) => t === 1));
    expect(curves.roc.a!.auc).toBeCloseTo(aucA, 12);
    expect(curves.roc.c!.auc).toBeNaN();
    expect(curves.roc.macro!.auc).toBeCloseTo((aucA + aucB) / 2, 12);
    // the averaged curve is a proper ROC curve: from (0,0) to (1,1), non-decreasing
    const macro = curves.roc.macro!;
    expect(macro.fpr[0]).toBe(0);
    expect(macro.tpr[macro.tpr.length - 1]).toBeCloseTo(1, 12);
    for (let i = 1; i < macro.tpr.length; i++) expect(macro.tpr[i]!).toBeGreaterThanOrEqual(macro.tpr[i - 1]!);
  });
});
