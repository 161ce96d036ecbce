// One exam's decision from its zones (predict --exam), checked by hand: the diagnosed zones
// averaged each once, refused ones counted apart, the set at patient level.
import { describe, expect, it } from 'vitest';
import { decideExam } from '../../src/decision/exam.js';
import type { ConformalCalibration } from '../../src/eval/conformal.js';

const classes = ['covid', 'pneumonia', 'regular'];
const zone = (p: number[] | null) => ({ label: p ? classes[p.indexOf(Math.max(...p))]! : null, probabilities: p ? { covid: p[0]!, pneumonia: p[1]!, regular: p[2]! } : null });

/** APS scores all 0.95 at patient level: the threshold 0.95 takes classes until 95% of the mass is in. */
const calibration: ConformalCalibration = {
  kind: 'pocovid-conformal', version: 1, method: 'aps', lambda: 0, kReg: 0, classes, coverage: 0.9, calibratedOn: 'out-of-fold',
  levels: { patient: { n: 9, scores: new Array<number>(9).fill(0.95) } },
};

describe('decideExam', () => {
  it('averages the diagnosed zones, leaves refused ones out and counts them', () => {
    const exam = decideExam([zone([0.7, 0.2, 0.1]), zone(null), zone([0.1, 0.5, 0.4])], classes, calibration);
    expect(exam.label).toBe('covid');
    expect(exam.probabilities!.covid).toBeCloseTo(0.4, 12);
    expect(exam.probabilities!.pneumonia).toBeCloseTo(0.35, 12);
    expect(exam.probabilities!.regular).toBeCloseTo(0.25, 12);
    expect([exam.diagnosedZones, exam.refusedZones]).toEqual([2, 1]);
    // Scores: covid 0.40, pneumonia 0.75, regular 1 → covid and pneumonia within 0.95.
    expect(exam.predictionSet).toEqual({ classes: ['covid', 'pneumonia'], coverage: 0.9, level: 'patient', decided: false, text: 'cannot decide between covid and pneumonia', calibrationSize: 9 });
  });

  it('gives no decision when no zone was diagnosed, no set without a calibration, and refuses voted zones', () => {
    expect(decideExam([zone(null)], classes, calibration)).toEqual({ label: null, probabilities: null, diagnosedZones: 0, refusedZones: 1 });
    expect(decideExam([zone([0.2, 0.2, 0.6])], classes).predictionSet).toBeUndefined();
    expect(() => decideExam([{ ...zone([0.2, 0.2, 0.6]), aggregation: 'vote' }], classes)).toThrow(/not by a vote/);
  });
});
