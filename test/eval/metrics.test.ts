import { describe, expect, it } from 'vitest';
import { argmax, confusionMatrix, metricsFromConfusion } from '../../src/eval/metrics.js';

describe('confusionMatrix', () => {
  it('puts true classes on rows and predictions on columns', () => {
    expect(confusionMatrix([0, 0, 1, 2], [0, 1, 1, 0], 3)).toEqual([
      [1, 1, 0],
      [0, 1, 0],
      [1, 0, 0],
    ]);
  });
  it('argmax keeps the first of tied values', () => {
    expect(argmax([0.2, 0.4, 0.4])).toBe(1);
  });
});

describe('metricsFromConfusion, hand-computed three-class case', () => {
  // true \ pred   A  B  C   | t
  //   A           5  1  0   | 6
  //   B           2  3  1   | 6
  //   C           1  0  3   | 4
  //   p           8  4  4     n = 16, correct = 11
  // A: tp 5 fn 1 fp 3 tn 7  -> P 5/8, R 5/6, spec 7/10, F1 2·5/(2·5+3+1) = 5/7
  // B: tp 3 fn 3 fp 1 tn 9  -> P 3/4, R 1/2, spec 9/10, F1 6/10
  // C: tp 3 fn 1 fp 1 tn 11 -> P 3/4, R 3/4, spec 11/12, F1 6/8
  // balanced accuracy = (5/6 + 1/2 + 3/4) / 3 = 25/36
  // MCC (Gorodkin) = (11·16 − (8·6 + 4·6 + 4·4)) / sqrt((256 − 96)(256 − 88)) = 88 / sqrt(160·168)
  const m = metricsFromConfusion([
    [5, 1, 0],
    [2, 3, 1],
    [1, 0, 3],
  ]);

  it('gives accuracy, balanced accuracy and MCC', () => {
    expect(m.n).toBe(16);
    expect(m.accuracy).toBeCloseTo(11 / 16, 12);
    expect(m.balancedAccuracy).toBeCloseTo(25 / 36, 12);
    expect(m.mcc).toBeCloseTo(88 / Math.sqrt(160 * 168), 12);
  });

  it('gives per-class precision, recall, specificity, F1 and support', () => {
    const expected = [
      { precision: 5 / 8, recall: 5 / 6, specificity: 7 / 10, f1: 5 / 7, support: 6 },
      { precision: 3 / 4, recall: 1 / 2, specificity: 9 / 10, f1: 6 / 10, support: 6 },
      { precision: 3 / 4, recall: 3 / 4, specificity: 11 / 12, f1: 6 / 8, support: 4 },
    ];
    m.perClass.forEach((c, i) => {
      for (const key of ['precision', 'recall', 'specificity', 'f1', 'support'] as const) expect(c[key]).toBeCloseTo(expected[i]![key], 12);
    });
  });

  it('gives macro and support-weighted averages', () => {
    expect(m.macro.precision).toBeCloseTo((5 / 8 + 3 / 4 + 3 / 4) / 3, 12);
    expect(m.macro.recall).toBeCloseTo(25 / 36, 12);
    expect(m.macro.f1).toBeCloseTo((5 / 7 + 0.6 + 0.75) / 3, 12);
    // weighted recall equals accuracy by construction
    expect(m.weighted.recall).toBeCloseTo(11 / 16, 12);
    expect(m.weighted.f1).toBeCloseTo((6 * (5 / 7) + 6 * 0.6 + 4 * 0.75) / 16, 12);
  });
});

describe('metricsFromConfusion, edge cases', () => {
  it('matches the textbook binary MCC', () => {
    // tp 3 fn 1 / fp 2 tn 4 with class 0 positive: (3·4 − 2·1) / sqrt(5·4·6·5) = 10/sqrt(600)
    const m = metricsFromConfusion([
      [3, 1],
      [2, 4],
    ]);
    expect(m.mcc).toBeCloseTo(10 / Math.sqrt(600), 12);
  });

  it('scores a class that is never predicted as precision 0, recall 0, F1 0, specificity 1', () => {
    // C (2 frames) is always called A.  A: tp 3 fp 2 -> P 3/5; C: tp 0 fp 0 -> P 0 by the zero-division rule.
    const m = metricsFromConfusion([
      [3, 0, 0],
      [0, 4, 0],
      [2, 0, 0],
    ]);
    expect(m.perClass[2]).toEqual({ precision: 0, recall: 0, specificity: 1, f1: 0, support: 2 });
    expect(m.perClass[0]!.precision).toBeCloseTo(3 / 5, 12);
    expect(m.balancedAccuracy).toBeCloseTo((1 + 1 + 0) / 3, 12);
    expect(m.macro.precision).toBeCloseTo((3 / 5 + 1 + 0) / 3, 12);
  });

  it('leaves a class absent from truth and predictions out of balanced accuracy and macro averages', () => {
    const m = metricsFromConfusion([
      [2, 0, 0],
      [1, 1, 0],
      [0, 0, 0],
    ]);
    expect(m.perClass[2]!.support).toBe(0);
    expect(m.balancedAccuracy).toBeCloseTo((1 + 0.5) / 2, 12);
    expect(m.macro.recall).toBeCloseTo((1 + 0.5) / 2, 12);
  });

  it('gives MCC 1 for a perfect classifier, −1 for an inverted binary one, 0 for a constant one', () => {
    expect(metricsFromConfusion([[4, 0], [0, 6]]).mcc).toBeCloseTo(1, 12);
    expect(metricsFromConfusion([[0, 4], [6, 0]]).mcc).toBeCloseTo(-1, 12);
    expect(metricsFromConfusion([[4, 0], [6, 0]]).mcc).toBe(0);
  });

  it('returns zeros, not NaN, for an empty matrix', () => {
    const m = metricsFromConfusion([[0, 0], [0, 0]]);
    expect([m.accuracy, m.balancedAccuracy, m.mcc, m.macro.f1]).toEqual([0, 0, 0, 0]);
  });
});
