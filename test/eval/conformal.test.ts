// Split-conformal sets: scores and thresholds against hand computations, and the coverage promise
// on synthetic exchangeable examples across seeds (APS and RAPS, several targets).
import { describe, expect, it } from 'vitest';
import {
  calibrate,
  calibrateLevel,
  conformalProblem,
  conformalScore,
  conformalSet,
  conformalThreshold,
  describeSet,
  minimumCalibrationSize,
  predictionSet,
  quantileRank,
  scoreRule,
  summariseSets,
  type LabelledProbabilities,
  type ScoreRule,
} from '../../src/eval/conformal.js';
import { createRng, type Rng } from '../../src/util/rng.js';

const aps = scoreRule('aps');
const raps = scoreRule('raps', 0.05, 1);

/** A noisy 3-class classifier: softmax of N(0,1) logits plus `signal` on the true class. */
function draw(rng: Rng, n: number, signal: number): LabelledProbabilities[] {
  return Array.from({ length: n }, () => {
    const label = rng.int(3);
    const logits = [0, 1, 2].map((k) => (k === label ? signal : 0) + rng.normal());
    const exp = logits.map(Math.exp);
    const total = exp.reduce((a, b) => a + b, 0);
    return { probabilities: exp.map((e) => e / total), label };
  });
}

function coverageOn(calibrationSet: LabelledProbabilities[], test: LabelledProbabilities[], coverage: number, rule: ScoreRule): ReturnType<typeof summariseSets> {
  const threshold = conformalThreshold(calibrateLevel(calibrationSet, rule).scores, coverage);
  return summariseSets(test, threshold, rule);
}

describe('conformal scores and thresholds', () => {
  it('scores a label by the probability mass ranked at or above it; RAPS adds λ per rank beyond k_reg', () => {
    const p = [0.3, 0.6, 0.1];
    expect(conformalScore(p, 1, aps)).toBeCloseTo(0.6, 12);
    expect(conformalScore(p, 0, aps)).toBeCloseTo(0.9, 12);
    expect(conformalScore(p, 2, aps)).toBeCloseTo(1.0, 12);
    expect(conformalScore(p, 1, raps)).toBeCloseTo(0.6, 12);
    expect(conformalScore(p, 0, raps)).toBeCloseTo(0.95, 12);
    expect(conformalScore(p, 2, raps)).toBeCloseTo(1.1, 12);
    // Ties keep class order.
    expect(conformalScore([0.5, 0.5, 0], 0, aps)).toBeCloseTo(0.5, 12);
    expect(conformalScore([0.5, 0.5, 0], 1, aps)).toBeCloseTo(1.0, 12);
    expect(() => conformalScore(p, 3, aps)).toThrow(/class 3/);
    // Softmax outputs sum to 1 only up to float error; the last class still scores exactly 1, so a
    // threshold of 1 takes every class whatever the rounding.
    expect(conformalScore([0.1, 0.2, 0.70000005], 0, aps)).toBe(1);
    expect(conformalScore([0.1, 0.2, 0.69999995], 0, aps)).toBe(1);
    expect(predictionSet([0.1, 0.2, 0.70000005], 1, aps)).toEqual([2, 1, 0]);
  });

  it('takes the ⌈(n+1)(1−α)⌉-th smallest score, and no finite threshold when n is too small', () => {
    expect(quantileRank(9, 0.9)).toBe(9);
    expect(quantileRank(19, 0.9)).toBe(18);
    expect(quantileRank(100, 0.9)).toBe(91);
    const scores = Array.from({ length: 9 }, (_, i) => (i + 1) / 10);
    expect(conformalThreshold(scores, 0.9)).toBeCloseTo(0.9, 12);
    expect(conformalThreshold(scores, 0.5)).toBeCloseTo(0.5, 12);
    expect(conformalThreshold(scores.slice(0, 8), 0.9)).toBe(Number.POSITIVE_INFINITY);
    expect(minimumCalibrationSize(0.9)).toBe(9);
    expect(minimumCalibrationSize(0.8)).toBe(4);
    expect(minimumCalibrationSize(0.95)).toBe(19);
    expect(() => conformalThreshold(scores, 1)).toThrow(/coverage/);
  });

  it('builds the set in ranking order, never empty, and every class when the threshold is infinite', () => {
    const p = [0.3, 0.6, 0.1];
    expect(predictionSet(p, 0.5, aps)).toEqual([1]); // the top class alone even though its score 0.6 > 0.5
    expect(predictionSet(p, 0.6, aps)).toEqual([1]);
    expect(predictionSet(p, 0.9, aps)).toEqual([1, 0]);
    expect(predictionSet(p, 0.92, raps)).toEqual([1]);
    expect(predictionSet(p, Number.POSITIVE_INFINITY, aps)).toEqual([1, 0, 2]);
  });

  it('words the set for a clinician: one class, or the classes it cannot decide between', () => {
    const names = ['covid', 'pneumonia', 'regular'];
    expect(describeSet([0], names)).toEqual({ decided: true, text: 'covid' });
    expect(describeSet([1, 0], names)).toEqual({ decided: false, text: 'cannot decide between pneumonia and covid' });
    expect(describeSet([2, 0, 1], names)).toEqual({ decided: false, text: 'cannot decide between regular, covid and pneumonia' });
  });
});

describe('coverage on exchangeable examples', () => {
  for (const [name, rule] of [['APS', aps], ['RAPS', raps]] as const) {
    for (const target of [0.8, 0.9, 0.95]) {
      it(`${name} at ${target}: mean coverage over 300 seeds with 20 calibration examples is at least the target`, () => {
        const seeds = 300;
        const coverages: number[] = [];
        for (let seed = 0; seed < seeds; seed++) {
          const rng = createRng(1000 + seed);
          coverages.push(coverageOn(draw(rng, 20, 1), draw(rng, 200, 1), target, rule).coverage);
        }
        const mean = coverages.reduce((a, b) => a + b, 0) / seeds;
        const sd = Math.sqrt(coverages.reduce((a, c) => a + (c - mean) ** 2, 0) / (seeds - 1));
        // The guarantee is on the mean over calibration draws: allow three standard errors below it.
        expect(mean).toBeGreaterThanOrEqual(target - 3 * (sd / Math.sqrt(seeds)));
        // ...and the sets are not made trivially large. Non-randomised scores and the top class
        // always kept make APS somewhat conservative, never all-encompassing.
        expect(mean).toBeLessThan(target + 0.1);
      });
    }
  }

  it('with 2,000 calibration examples every seed covers at least the target minus sampling noise, with sets smaller than all classes', () => {
    for (let seed = 0; seed < 20; seed++) {
      const rng = createRng(seed);
      const summary = coverageOn(draw(rng, 2000, 2), draw(rng, 2000, 2), 0.9, aps);
      expect(summary.coverage, `seed ${seed}`).toBeGreaterThanOrEqual(0.88);
      expect(summary.meanSetSize, `seed ${seed}`).toBeLessThan(2.2);
      expect(summary.singletonRate).toBeGreaterThan(0.2);
      // A singleton is right at least as often as the target coverage promises for the whole set.
      expect(summary.singletonAccuracy).toBeGreaterThan(0.9);
    }
  });

  it('a calibration keeps every level it was given and answers sets at any coverage from its scores', () => {
    const rng = createRng(5);
    const frames = draw(rng, 50, 2);
    const cal = calibrate({ frame: frames, video: frames.slice(0, 5) }, { classes: ['a', 'b', 'c'], calibratedOn: 'validation' });
    expect(cal.coverage).toBe(0.9);
    expect(cal.levels.frame!.n).toBe(50);
    expect(cal.levels.patient).toBeUndefined();
    expect(conformalProblem(JSON.parse(JSON.stringify(cal)))).toBeUndefined();
    // 5 videos are too few for 0.9 (need 9): every class; enough for 0.8 (need 4).
    expect(conformalSet(cal, 'video', [0.9, 0.05, 0.05]).classes).toEqual([0, 1, 2]);
    expect(conformalSet(cal, 'video', [0.9, 0.05, 0.05], 0.8).threshold).toBe(cal.levels.video!.scores[4]);
    expect(() => conformalSet(cal, 'patient', [0.9, 0.05, 0.05])).toThrow(/patient-level/);
    expect(() => conformalSet(cal, 'frame', [0.9, 0.1])).toThrow(/2 probabilities/);
  });

  it('names what is wrong with a damaged calibration', () => {
    const good = calibrate({ frame: draw(createRng(1), 20, 1) }, { classes: ['a', 'b', 'c'], calibratedOn: 'out-of-fold' });
    expect(conformalProblem({ ...good, kind: 'x' })).toMatch(/pocovid-conformal/);
    expect(conformalProblem({ ...good, coverage: 1.5 })).toMatch(/coverage/);
    expect(conformalProblem({ ...good, levels: { frame: { n: 3, scores: [0.1, 0.2] } } })).toMatch(/n must equal/);
    expect(conformalProblem({ ...good, levels: { frame: { n: 2, scores: [0.5, 0.2] } } })).toMatch(/ascending/);
    expect(conformalProblem({ ...good, levels: { zone: { n: 0, scores: [] } } })).toMatch(/unknown level/);
  });
});
