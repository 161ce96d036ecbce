import { describe, expect, it } from 'vitest';
import { evaluatePredictions } from '../../src/eval/evaluate.js';
import { meanStd } from '../../src/eval/folds.js';
import { row } from './fixtures.js';

describe('meanStd', () => {
  it('uses the sample standard deviation and skips undefined values', () => {
    const s = meanStd([0.5, 1.0, null, Number.NaN]);
    expect(s.mean).toBeCloseTo(0.75, 12);
    expect(s.std).toBeCloseTo(Math.sqrt(0.125), 12);
    expect(s.n).toBe(2);
    expect(meanStd([0.3]).std).toBe(0);
  });
});

describe('evaluatePredictions', () => {
  const classes = ['a', 'b', 'c'];
  // fold 0: all right. fold 1: v3 (c) is called a in every frame: c is never predicted.
  const rows = [
    row('v1', 0, 'a', 'a', [0.8, 0.1, 0.1], 'v1/0'),
    row('v1', 0, 'a', 'a', [0.6, 0.3, 0.1], 'v1/1'),
    row('v2', 0, 'b', 'b', [0.2, 0.7, 0.1], 'v2/0'),
    row('v3', 1, 'c', 'a', [0.5, 0.1, 0.4], 'v3/0'),
    row('v3', 1, 'c', 'a', [0.6, 0.1, 0.3], 'v3/1'),
    row('v4', 1, 'b', 'b', [0.1, 0.8, 0.1], 'v4/0'),
    row('v5', 1, 'a', 'a', [0.7, 0.2, 0.1], 'v5/0'),
  ];
  const report = evaluatePredictions(rows, classes, { videoAggregation: 'vote' });

  it('has the report.json shape of the issue', () => {
    for (const m of [report.frame, report.video, ...report.folds]) {
      expect(Object.keys(m)).toEqual(expect.arrayContaining(['accuracy', 'balancedAccuracy', 'mcc', 'perClass', 'confusionMatrix', 'auc']));
      expect(Object.keys(m.perClass)).toEqual(classes);
      expect(Object.keys(m.perClass.a!)).toEqual(['precision', 'recall', 'specificity', 'f1', 'support']);
      expect(Object.keys(m.auc)).toEqual([...classes, 'micro', 'macro']);
    }
    expect(report.task).toMatchObject({ frames: 7, videos: 5, folds: [0, 1], videoAggregation: 'vote' });
  });

  it('computes frame metrics with a class never predicted', () => {
    expect(report.frame.confusionMatrix).toEqual([
      [3, 0, 0],
      [0, 2, 0],
      [2, 0, 0],
    ]);
    expect(report.frame.accuracy).toBeCloseTo(5 / 7, 12);
    expect(report.frame.perClass.c).toEqual({ precision: 0, recall: 0, specificity: 1, f1: 0, support: 2 });
    // c's frames score 0.4 and 0.3 on c, every other frame 0.1: AUC for c is 1 even though it is never predicted
    expect(report.frame.auc.c).toBe(1);
  });

  it('computes video metrics from one decision per source', () => {
    expect(report.video.n).toBe(5);
    expect(report.video.confusionMatrix).toEqual([
      [2, 0, 0],
      [0, 2, 0],
      [1, 0, 0],
    ]);
    expect(report.videoByAggregation.mean.confusionMatrix).toEqual(report.video.confusionMatrix);
  });

  it('evaluates each fold and summarises them as mean ± sample std', () => {
    expect(report.folds.map((f) => f.accuracy)).toEqual([1, 0.5]);
    expect(report.foldSummary!.accuracy.mean).toBeCloseTo(0.75, 12);
    expect(report.foldSummary!.accuracy.std).toBeCloseTo(Math.sqrt(0.125), 12);
    // c has support only in fold 1: its recall is averaged over that fold alone
    expect(report.foldSummary!.perClass.c!.recall).toEqual({ mean: 0, std: 0, n: 1 });
    // fold 0 has no c at all: its AUC for c is undefined (null), and the summary skips it
    expect(report.folds[0]!.auc.c).toBeNull();
    expect(report.foldSummary!.auc.c!.n).toBe(1);
    expect(report.videoFolds).toHaveLength(2);
  });

  it('gives AUC 0.5 for a classifier that outputs the same probabilities everywhere', () => {
    const flat = ['x', 'y', 'x', 'y'].map((label, i) => row(`s${i}`, 0, label, 'x', [0.5, 0.5]));
    const r = evaluatePredictions(flat, ['x', 'y']);
    expect(r.frame.auc).toMatchObject({ x: 0.5, y: 0.5, micro: 0.5, macro: 0.5 });
  });

  it('gives an inverted classifier AUC 0 and MCC −1', () => {
    const inverted = [row('s0', 0, 'x', 'y', [0.2, 0.8]), row('s1', 0, 'y', 'x', [0.9, 0.1]), row('s2', 0, 'x', 'y', [0.4, 0.6])];
    const r = evaluatePredictions(inverted, ['x', 'y']);
    expect(r.frame.auc.x).toBe(0);
    expect(r.frame.mcc).toBeCloseTo(-1, 12);
    expect(r.frame.balancedAccuracy).toBe(0);
  });

  it('serialises without NaN', () => {
    expect(JSON.stringify(report)).not.toMatch(/NaN/);
  });
});
