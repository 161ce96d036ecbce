// The learned video decision: attention pooling over a video's frames (src/decision/video_attention.ts)
// and its fold-by-fold fit on a cv run's training videos (src/eval/learned_video.ts).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attentionObjective, attentionPool, attentionWeights, fitAttentionPooling, type AttentionVideo } from '../../src/decision/video_attention.js';
import { learnedVideoDecision } from '../../src/eval/learned_video.js';
import { readPredictionsCsv, writePredictionsCsv } from '../../src/eval/csv.js';
import { evaluateRun } from '../../src/eval/report.js';
import { shiftProbabilities } from '../../src/train/logistic_head.js';
import type { PredictionRow } from '../../src/eval/types.js';
import { createRng } from '../../src/util/rng.js';

const classes = ['covid', 'pneumonia', 'regular'];

function normalise(v: number[]): number[] {
  const s = v.reduce((a, b) => a + b, 0);
  return v.map((x) => x / s);
}

/**
 * COVID videos whose finding shows in 3 of 10 frames (those frames say COVID clearly, the rest lean
 * regular), regular videos leaning regular throughout, pneumonia videos clear: the mean rule calls
 * the COVID videos regular; listening to the COVID-confident frames finds them.
 */
function syntheticVideos(seed: number, perClass: number): AttentionVideo[] {
  const rng = createRng(seed);
  const jitter = () => 0.9 + 0.2 * rng.next();
  const videos: AttentionVideo[] = [];
  for (let v = 0; v < perClass; v++) {
    videos.push({ label: 0, frames: Array.from({ length: 10 }, (_, i) => normalise(i < 3 ? [0.9 * jitter(), 0.02, 0.08] : [0.2 * jitter(), 0.05, 0.75])) });
    videos.push({ label: 1, frames: Array.from({ length: 10 }, () => normalise([0.05, 0.85 * jitter(), 0.1])) });
    videos.push({ label: 2, frames: Array.from({ length: 10 }, () => normalise([0.3 * jitter(), 0.05, 0.65])) });
  }
  return videos;
}

describe('attention pooling over frames', () => {
  it('is the mean rule at u = 0 and follows the frames it weighs', () => {
    const frames = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]];
    expect(attentionWeights(frames, [0, 0, 0])).toEqual([1 / 3, 1 / 3, 1 / 3]);
    attentionPool(frames, [0, 0, 0]).forEach((p, k) => expect(p).toBeCloseTo((frames[0]![k]! + frames[1]![k]! + frames[2]![k]!) / 3, 12));
    // A large weight on log p_covid puts the first frame's probabilities in front.
    const pooled = attentionPool(frames, [30, 0, 0]);
    pooled.forEach((p, k) => expect(p).toBeCloseTo(frames[0]![k]!, 6));
  });

  it('has the gradient of its objective (central differences)', () => {
    const videos = syntheticVideos(3, 4);
    const u = [0.4, -0.3, 0.2];
    const { gradient } = attentionObjective(videos, u, 3);
    for (let k = 0; k < 3; k++) {
      const h = 1e-5;
      const plus = attentionObjective(videos, u.map((x, j) => (j === k ? x + h : x)), 3).loss;
      const minus = attentionObjective(videos, u.map((x, j) => (j === k ? x - h : x)), 3).loss;
      expect(gradient[k]!).toBeCloseTo((plus - minus) / (2 * h), 6);
    }
  });

  it('learns to listen to the COVID-confident frames where the mean averages the finding away', () => {
    const train = syntheticVideos(5, 8);
    const fit = fitAttentionPooling(train, 3, { l2: 0.01 });
    expect(fit.videos).toBe(24);
    expect(fit.loss).toBeLessThan(fit.meanRuleLoss - 0.1);
    expect(fit.query[0]!).toBeGreaterThan(fit.query[2]!);
    const test = syntheticVideos(6, 8).filter((v) => v.label === 0);
    const argmax = (p: number[]) => p.indexOf(Math.max(...p));
    expect(test.filter((v) => argmax(attentionPool(v.frames, [0, 0, 0])) === 0)).toHaveLength(0);
    expect(test.filter((v) => argmax(attentionPool(v.frames, fit.query)) === 0)).toHaveLength(test.length);
  });

  it('ignores one-frame sources (pooling cannot change them) and stays at the mean rule without videos', () => {
    const images: AttentionVideo[] = [{ label: 0, frames: [[0.8, 0.1, 0.1]] }, { label: 2, frames: [[0.6, 0.1, 0.3]] }];
    const fit = fitAttentionPooling(images, 3);
    expect(fit.videos).toBe(0);
    expect(fit.query).toEqual([0, 0, 0]);
  });
});

describe("a cv run's learned video decision", () => {
  const root = mkdtempSync(join(tmpdir(), 'pocovid-attention-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function rowsOf(videos: AttentionVideo[], fold: number, tag: string): PredictionRow[] {
    return videos.flatMap((v, i) =>
      v.frames.map((p, f) => ({ path: `frames/${tag}${i}_${f}.png`, source: `${tag}${i}.mp4`, patient: `${tag}${i}`, fold, label: classes[v.label]!, predicted: classes[p.indexOf(Math.max(...p))]!, probs: p })),
    );
  }

  function writeRun(dir: string, offsetsInCalibration: boolean): PredictionRow[] {
    const bias = [0.8, -0.2, 0];
    const test: PredictionRow[] = [];
    for (const fold of [0, 1]) {
      const foldDir = join(dir, `fold-${fold}`);
      mkdirSync(foldDir, { recursive: true });
      // Training frames as the head scores them without its offsets; the saved classifier adds them.
      const training = rowsOf(syntheticVideos(10 + fold, 6), 1 - fold, `t${fold}_`).map((r) => ({ ...r, probs: shiftProbabilities(r.probs, bias.map((b) => -b)) }));
      const calibration = offsetsInCalibration ? training.map((r) => ({ ...r, probs: shiftProbabilities(r.probs, bias) })) : training;
      writePredictionsCsv(join(foldDir, 'calibration_predictions.csv'), calibration, classes);
      writeFileSync(join(foldDir, 'logistic.json'), JSON.stringify({ penalty: 0.01, classBias: bias, ...(offsetsInCalibration ? { outOfFoldHasClassBias: true } : {}) }));
      test.push(...rowsOf(syntheticVideos(20 + fold, 3), fold, `s${fold}_`));
    }
    writePredictionsCsv(join(dir, 'predictions.csv'), test, classes);
    return test;
  }

  it('fits each fold on its training videos and decides its test videos with that fold\'s query', () => {
    const dir = join(root, 'current');
    const test = writeRun(dir, true);
    const learned = learnedVideoDecision(dir, test, classes, { l2: 0.01 })!;
    expect(learned.folds.map((f) => f.fold)).toEqual([0, 1]);
    expect(learned.videos).toHaveLength(18);
    // Fold 0's query is the fit on fold 0's training videos (its calibration file), nothing else.
    const training = readPredictionsCsv(join(dir, 'fold-0', 'calibration_predictions.csv')).rows;
    const videos = [...new Set(training.map((r) => r.source))].map((source) => {
      const frames = training.filter((r) => r.source === source);
      return { frames: frames.map((r) => r.probs), label: classes.indexOf(frames[0]!.label) };
    });
    const expected = fitAttentionPooling(videos, 3, { l2: 0.01 }).query;
    learned.folds[0]!.fit.query.forEach((q, k) => expect(q).toBeCloseTo(expected[k]!, 12));
    // Each test video is its fold's query applied to its frames, and the COVID videos are found.
    for (const video of learned.videos) {
      const frames = test.filter((r) => r.source === video.source).map((r) => r.probs);
      const query = learned.folds.find((f) => f.fold === video.fold)!.fit.query;
      attentionPool(frames, query).forEach((p, k) => expect(video.probs[k]!).toBeCloseTo(p, 12));
    }
    expect(learned.videos.filter((v) => v.label === 'covid').every((v) => v.predicted === 'covid')).toBe(true);
  });

  it("is left out for a run whose calibration lacks its classifier's offsets (written before they joined it)", () => {
    const dir = join(root, 'older');
    const test = writeRun(dir, false);
    expect(learnedVideoDecision(dir, test, classes)).toBeUndefined();
  });

  it('is left out when a fold kept no training predictions', () => {
    const dir = join(root, 'partial');
    const test = writeRun(dir, true);
    rmSync(join(dir, 'fold-1', 'calibration_predictions.csv'));
    expect(learnedVideoDecision(dir, test, classes)).toBeUndefined();
  });

  it("evaluate reports it beside the fixed rules, with each fold's query", async () => {
    const dir = join(root, 'report');
    writeRun(dir, true);
    const { report } = await evaluateRun(dir, { plots: false, worstErrors: 0 });
    expect(report.learnedVideo!.folds).toHaveLength(2);
    expect(report.learnedVideo!.metrics.n).toBe(18);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toMatch(/\| learned attention over frames \(fitted on the training folds\) \| [0-9.]+ \|/);
    expect(md).toContain('fold 0 u = (');
  });
});
