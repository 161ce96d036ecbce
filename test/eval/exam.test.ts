// The exam rule (every zone weighs the same) and frames → patients, checked by hand.
import { describe, expect, it } from 'vitest';
import { aggregatePatients, examProbabilities } from '../../src/eval/exam.js';
import { examplesByLevel, calibrateFromRows, coverageByLevel } from '../../src/eval/conformal_rows.js';
import type { PredictionRow } from '../../src/eval/types.js';

const classes = ['covid', 'pneumonia', 'regular'];

function frame(source: string, patient: string, label: string, probs: number[], fold = 0): PredictionRow {
  const predicted = classes[probs.indexOf(Math.max(...probs))]!;
  return { path: `${source}#${probs.join('/')}`, source, patient, fold, label, predicted, probs };
}

describe('exam rule', () => {
  it('averages zones, each once, whatever their frame counts', () => {
    expect(examProbabilities([[1, 0, 0], [0, 1, 0]])).toEqual([0.5, 0.5, 0]);
    expect(() => examProbabilities([])).toThrow(/at least one zone/);
    expect(() => examProbabilities([[1, 0, 0], [1, 0]])).toThrow(/3 and 2/);
  });

  it('turns frames into one row per patient: mean of the zone means, not of the frames', () => {
    const rows = [
      // Zone A: three frames saying covid; zone B: one frame saying regular.
      frame('a.mp4', 'p1', 'covid', [0.8, 0.1, 0.1]),
      frame('a.mp4', 'p1', 'covid', [0.8, 0.1, 0.1]),
      frame('a.mp4', 'p1', 'covid', [0.8, 0.1, 0.1]),
      frame('b.png', 'p1', 'covid', [0.0, 0.1, 0.9]),
      frame('c.mp4', 'p2', 'regular', [0.2, 0.2, 0.6], 1),
    ];
    const { rows: exams, mixedLabels, splitAcrossFolds } = aggregatePatients(rows, classes);
    expect(mixedLabels).toEqual([]);
    expect(splitAcrossFolds).toEqual([]);
    expect(exams).toHaveLength(2);
    const p1 = exams.find((e) => e.patient === 'p1')!;
    // Frame mean would be (2.4 + 0)/4 = 0.6 for covid; the zone mean is (0.8 + 0)/2 = 0.4.
    expect(p1.probs[0]).toBeCloseTo(0.4, 12);
    expect(p1.probs[2]).toBeCloseTo(0.5, 12);
    expect(p1.predicted).toBe('regular');
    expect(p1.label).toBe('covid');
    expect(exams.find((e) => e.patient === 'p2')!.fold).toBe(1);
  });

  it('leaves out a patient whose zones carry different labels, and splits one spread over folds', () => {
    const rows = [
      frame('a.mp4', 'p1', 'covid', [0.8, 0.1, 0.1]),
      frame('b.mp4', 'p1', 'regular', [0.1, 0.1, 0.8]),
      frame('c.mp4', 'p2', 'regular', [0.1, 0.1, 0.8], 0),
      frame('d.mp4', 'p2', 'regular', [0.2, 0.1, 0.7], 1),
    ];
    const result = aggregatePatients(rows, classes);
    expect(result.mixedLabels).toEqual(['p1']);
    expect(result.splitAcrossFolds).toEqual(['p2']);
    expect(result.rows.map((r) => [r.path, r.fold])).toEqual([['p2 (fold 0)', 0], ['p2 (fold 1)', 1]]);
  });

  it('calibrates and scores frames, videos and exams from the same rows', () => {
    const rows: PredictionRow[] = [];
    for (let p = 0; p < 12; p++) {
      const label = p % 3;
      for (let v = 0; v < 2; v++) {
        for (let f = 0; f < 3; f++) {
          const probs = [0.2, 0.2, 0.2];
          probs[label] = 0.6;
          rows.push(frame(`p${p}v${v}.mp4`, `p${p}`, classes[label]!, probs));
        }
      }
    }
    const examples = examplesByLevel(rows, classes);
    expect(examples.frame).toHaveLength(72);
    expect(examples.video).toHaveLength(24);
    expect(examples.patient).toHaveLength(12);
    const cal = calibrateFromRows(rows, classes, { calibratedOn: 'validation', coverage: 0.9 });
    expect(cal.levels.patient!.n).toBe(12);
    const coverage = coverageByLevel(cal, rows, classes);
    // Every example is right with 0.6 on its class: the threshold is 0.6 and every set is that one class.
    for (const level of ['frame', 'video', 'patient'] as const) {
      expect(coverage[level]!.coverage).toBe(1);
      expect(coverage[level]!.meanSetSize).toBe(1);
      expect(coverage[level]!.singletonAccuracy).toBe(1);
      expect(coverage[level]!.threshold).toBeCloseTo(0.6, 12);
    }
    expect(() => coverageByLevel(cal, rows, ['a', 'b', 'c'])).toThrow(/classes covid, pneumonia, regular/);
  });
});
