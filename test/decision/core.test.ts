// The one decision core: the guard's majority rule, flagged frames left out, the guard's own
// frames, mean and vote, the frame shown and its Grad-CAM, the uncertainty warning, the
// prediction set.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MemberForward } from '../../src/decision/classify.js';
import { argMax, decide } from '../../src/decision/combine.js';
import { decideFrames, guardFrameSide, uncertaintyWarning, type DecisionFrame, type DecisionModel, type Guard } from '../../src/decision/core.js';
import { conformalScore, conformalSet, rankClasses, type ConformalCalibration, type LevelCalibration } from '../../src/eval/conformal.js';
import { initEngine } from '../../src/engine/index.js';
import { GUARD_SIZE } from '../../src/guard/features.js';
import { pixelsToInput } from '../../src/models/preprocess.js';
import { pattern } from '../helpers/media_fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

const cfg = tinyCfg(32);
let members: tfl.LayersModel[];

/** TF.js forward passes, as the page runs them. */
const tfjsForward = (model: tfl.LayersModel): MemberForward => async (batch, n) =>
  tf.tidy(() => (model.predict(tf.tensor4d(batch, [n, 32, 32, 3])) as tf.Tensor).dataSync() as Float32Array);

/** A guard that flags frames brighter on average than `limit` and records the sizes it was given. */
function brightnessGuard(limit: number, seen: [number, number][] = []): Guard {
  return (rgb, width, height) => {
    seen.push([width, height]);
    const mean = rgb.reduce((a, b) => a + b, 0) / rgb.length;
    return { flagged: mean > limit, reason: `too bright (${mean.toFixed(0)})`, score: mean };
  };
}

function frames(count: number, bright: number[] = []): DecisionFrame[] {
  return Array.from({ length: count }, (_, i) => ({
    index: i,
    time: i / 3,
    rgb: bright.includes(i) ? new Uint8Array(32 * 32 * 3).fill(250) : pattern(32, 32, i),
  }));
}

function model(guard?: Guard, count = 2, conformal?: ConformalCalibration): DecisionModel {
  return {
    classes: TINY_CLASSES,
    cfg,
    members: members.slice(0, count),
    forwards: members.slice(0, count).map(tfjsForward),
    ...(guard ? { guard } : {}),
    ...(conformal ? { conformal } : {}),
  };
}

/** A hand-made APS calibration: `levels` as given, at 90%. */
function calibration(levels: ConformalCalibration['levels'], classes = TINY_CLASSES): ConformalCalibration {
  return { kind: 'pocovid-conformal', version: 1, method: 'aps', lambda: 0, kReg: 0, classes, coverage: 0.9, calibratedOn: 'validation', levels };
}

/** n equal scores: the threshold at 90% is that score (n ≥ 9). */
const flat = (score: number, n = 19): LevelCalibration => ({ n, scores: new Array<number>(n).fill(score) });

/** Mean of vectors, computed here rather than by the code under test. */
const mean = (rows: number[][]): number[] => rows[0]!.map((_, c) => rows.reduce((a, r) => a + r[c]!, 0) / rows.length);

/** Each frame's ensemble-mean probabilities, computed directly. */
function frameProbabilities(list: DecisionFrame[], count = 2): number[][] {
  return list.map((f) =>
    tf.tidy(() => {
      const x = tf.tensor4d(pixelsToInput(f.rgb, cfg), [1, 32, 32, 3]);
      const rows = members.slice(0, count).map((m) => Array.from((m.predict(x) as tf.Tensor).dataSync()));
      return rows[0]!.map((_, c) => rows.reduce((a, r) => a + r[c]!, 0) / rows.length);
    }),
  );
}

beforeAll(async () => {
  await initEngine();
  members = [tinyModel(1), tinyModel(5)];
});

describe('decideFrames', () => {
  it('decides a video from the frames the guard passes, by the mean of the ensemble', async () => {
    const first = frames(4, [1]);
    const probs = frameProbabilities(first);
    const want = decide([0, 2, 3].map((i) => ({ probabilities: probs[i]!, ensembleStd: null, mcDropoutStd: null })));
    // The passed frame most typical of the label goes last, so that "the first" is not it.
    const best = [0, 2, 3].reduce((a, b) => (probs[b]![want.classIndex]! > probs[a]![want.classIndex]! ? b : a));
    const list = [...[0, 1, 2, 3].filter((i) => i !== best).map((i) => first[i]!), first[best]!].map((f, i) => ({ ...f, index: i }));
    const before = tf.memory().numTensors;
    const { result, shown } = await decideFrames(model(brightnessGuard(200)), list, 'video');
    expect(tf.memory().numTensors).toBe(before);
    expect(result.label).toBe(TINY_CLASSES[want.classIndex]);
    TINY_CLASSES.forEach((c, k) => expect(result.probabilities![c]).toBeCloseTo(want.probabilities[k]!, 5));
    const flaggedAt = list.findIndex((f) => f.rgb[0] === 250);
    expect(result.frames!.map((f) => f.label === null)).toEqual(list.map((_, i) => i === flaggedAt));
    expect(result.frames![flaggedAt]!.guard).toMatchObject({ flagged: true, reason: 'too bright (250)' });
    expect(result.guard).toMatchObject({ flagged: false, reason: '1 of 4 frames flagged' });
    expect(result.uncertainty!.ensembleStd).toBeGreaterThan(0);
    expect(shown).toBe(3);
  });

  it('reports progress after each batch, gives the same answer one frame per pass, and stops when the callback throws', async () => {
    const list = frames(5);
    const whole = await decideFrames(model(), list, 'video');
    const progress: [number, number][] = [];
    const oneByOne = await decideFrames(model(), list, 'video', { batchSize: 1, onProgress: (done, total) => void progress.push([done, total]) });
    expect(progress).toEqual([1, 2, 3, 4, 5].map((k) => [k, 5]));
    expect(oneByOne.result.label).toBe(whole.result.label);
    for (const c of TINY_CLASSES) expect(oneByOne.result.probabilities![c]).toBeCloseTo(whole.result.probabilities![c]!, 6);
    // The page cancels this way: no result, and no tensor left behind.
    const before = tf.memory().numTensors;
    const stop = new Error('cancelled');
    await expect(
      decideFrames(model(), list, 'video', {
        batchSize: 2,
        onProgress: (done) => {
          if (done >= 2) throw stop;
        },
      }),
    ).rejects.toBe(stop);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives no diagnosis when most frames are flagged, and says why', async () => {
    const { result, shown, heatmapRgb } = await decideFrames(model(brightnessGuard(200)), frames(4, [0, 1, 3]), 'video', { heatmap: true });
    expect(result).toMatchObject({ label: null, probabilities: null, confidence: null, uncertainty: null });
    expect(result.guard).toMatchObject({ flagged: true, reason: '3 of 4 frames flagged: too bright (250)' });
    expect(result.frames).toHaveLength(4);
    expect(shown).toBeUndefined();
    expect(heatmapRgb).toBeUndefined();
    // Half passed is enough: 2 of 4.
    expect((await decideFrames(model(brightnessGuard(200)), frames(4, [0, 1]), 'video')).result.label).not.toBeNull();
  });

  it('refuses a flagged image outright, and gives the guard its own frames when they are there', async () => {
    const seen: [number, number][] = [];
    const image = frames(1, [0]);
    const refused = await decideFrames(model(brightnessGuard(200, seen)), image, 'image');
    expect(refused.result).toMatchObject({ kind: 'image', label: null, guard: { flagged: true } });
    expect(refused.result.frames).toBeUndefined();
    const withOwn = frames(1).map((f) => ({ ...f, guardFrame: { rgb: pattern(GUARD_SIZE, GUARD_SIZE, 0), width: GUARD_SIZE, height: GUARD_SIZE } }));
    await decideFrames(model(brightnessGuard(200, seen)), withOwn, 'image');
    expect(seen).toEqual([[32, 32], [GUARD_SIZE, GUARD_SIZE]]);
  });

  it('votes when asked: each class gets the share of frames whose top class it is', async () => {
    const list = frames(5);
    const probs = frameProbabilities(list, 1);
    const { result } = await decideFrames(model(undefined, 1), list, 'video', { aggregation: 'vote' });
    const votes = TINY_CLASSES.map((_, c) => probs.filter((p) => argMax(p) === c).length / 5);
    TINY_CLASSES.forEach((c, k) => expect(result.probabilities![c]).toBeCloseTo(votes[k]!, 10));
    expect(result.aggregation).toBe('vote');
    expect(result.guard).toBeUndefined();
    expect(result.uncertainty!.ensembleStd).toBeNull();
  });

  it('overlays Grad-CAM on the frame shown, and names it for a video', async () => {
    const list = frames(3);
    const { result, shown, heatmapRgb } = await decideFrames(model(), list, 'video', { heatmap: true });
    expect(heatmapRgb).toHaveLength(32 * 32 * 3);
    expect(result.heatmapFrame).toBe(list[shown!]!.index);
    const image = await decideFrames(model(), frames(1), 'image', { heatmap: true });
    expect(image.heatmapRgb).toHaveLength(32 * 32 * 3);
    expect(image.result.heatmapFrame).toBeUndefined();
  });
});

describe('the prediction set', () => {
  // Scores spread over [0.3, 1]: sets of one, two or three classes depending on the input.
  const spread: LevelCalibration = { n: 20, scores: Array.from({ length: 20 }, (_, i) => 0.3 + (0.7 * i) / 19) };

  it('is the conformal set of the image\'s probabilities at frame level, and of the video\'s mean at video level', async () => {
    const cal = calibration({ frame: spread, video: { n: 12, scores: spread.scores.slice(4, 16) } });
    const image = frames(1);
    const imageProbs = frameProbabilities(image)[0]!;
    const { result: imageResult } = await decideFrames(model(undefined, 2, cal), image, 'image');
    const wantImage = conformalSet(cal, 'frame', imageProbs);
    expect(imageResult.predictionSet).toMatchObject({
      classes: wantImage.classes.map((k) => TINY_CLASSES[k]),
      coverage: 0.9,
      level: 'frame',
      decided: wantImage.classes.length === 1,
      calibrationSize: 20,
    });
    const video = frames(4);
    const videoProbs = mean(frameProbabilities(video));
    const { result: videoResult } = await decideFrames(model(undefined, 2, cal), video, 'video');
    const wantVideo = conformalSet(cal, 'video', videoProbs);
    expect(videoResult.predictionSet).toMatchObject({ classes: wantVideo.classes.map((k) => TINY_CLASSES[k]), level: 'video', calibrationSize: 12 });
    // The top class always leads the set, and the label is it.
    expect(videoResult.predictionSet!.classes[0]).toBe(videoResult.label);
  });

  it('abstains when the threshold lets a second class in, and says between which', async () => {
    const image = frames(1);
    const probs = frameProbabilities(image)[0]!;
    const [top, second, third] = rankClasses(probs);
    // A threshold just above the second class's score (and below the third's, which is 1).
    const two = conformalScore(probs, second!, { method: 'aps', lambda: 0, kReg: 0 }) + 1e-6;
    const { result } = await decideFrames(model(undefined, 2, calibration({ frame: flat(two) })), image, 'image');
    expect(result.predictionSet).toMatchObject({
      classes: [TINY_CLASSES[top!], TINY_CLASSES[second!]],
      decided: false,
      text: `cannot decide between ${TINY_CLASSES[top!]} and ${TINY_CLASSES[second!]}`,
    });
    const all = await decideFrames(model(undefined, 2, calibration({ frame: flat(1) })), image, 'image');
    expect(all.result.predictionSet).toMatchObject({ decided: false, text: `cannot decide between ${TINY_CLASSES[top!]}, ${TINY_CLASSES[second!]} and ${TINY_CLASSES[third!]}` });
    // A threshold below every score: the top class alone, a decision.
    const one = await decideFrames(model(undefined, 2, calibration({ frame: flat(0.01) })), image, 'image');
    expect(one.result.predictionSet).toMatchObject({ classes: [result.label], decided: true, text: result.label });
  });

  it('is left out without a calibration, without the level, for a vote, and when the guard refused', async () => {
    expect((await decideFrames(model(), frames(1), 'image')).result.predictionSet).toBeUndefined();
    const frameOnly = calibration({ frame: spread });
    const video = await decideFrames(model(undefined, 2, frameOnly), frames(3), 'video');
    expect(video.result.label).not.toBeNull();
    expect(video.result.predictionSet).toBeUndefined();
    const vote = await decideFrames(model(undefined, 2, calibration({ frame: spread, video: spread })), frames(3), 'video', { aggregation: 'vote' });
    expect(vote.result.predictionSet).toBeUndefined();
    const refused = await decideFrames(model(brightnessGuard(200), 2, frameOnly), frames(1, [0]), 'image');
    expect(refused.result.label).toBeNull();
    expect(refused.result.predictionSet).toBeUndefined();
  });

  it('refuses a calibration made for another class order', async () => {
    const swapped = calibration({ frame: spread }, ['pneumonia', 'covid', 'regular']);
    await expect(decideFrames(model(undefined, 2, swapped), frames(1), 'image')).rejects.toThrow(/calibration is for classes pneumonia, covid, regular, the model gives covid, pneumonia, regular/);
  });
});

describe('the rules around the decision', () => {
  it('gives the stored guard frames of its own only for models smaller than its scale', () => {
    expect(guardFrameSide({ inputSize: [64, 64] }, 'stored')).toBe(GUARD_SIZE);
    expect(guardFrameSide({ inputSize: [GUARD_SIZE, GUARD_SIZE] }, 'stored')).toBeUndefined();
    expect(guardFrameSide({ inputSize: [64, 64] }, 'custom')).toBeUndefined();
    expect(guardFrameSide({ inputSize: [64, 64] }, 'none')).toBeUndefined();
  });

  it('warns when the entropy or the members\' spread is high, and says which', () => {
    expect(uncertaintyWarning({ entropy: 0.59, ensembleStd: 0.14, mcDropoutStd: null })).toBeUndefined();
    expect(uncertaintyWarning({ entropy: 0.6, ensembleStd: null, mcDropoutStd: null })).toBe('high uncertainty: entropy 0.60 ≥ 0.6');
    expect(uncertaintyWarning({ entropy: 0.1, ensembleStd: 0.2, mcDropoutStd: 0.3 })).toBe(
      'high uncertainty: ensemble members disagree (spread 0.20 ≥ 0.15); MC-dropout spread 0.30 ≥ 0.15',
    );
  });
});
