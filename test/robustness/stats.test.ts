// The robustness figures on hand-made probabilities: frame and video flips (videos decided as the
// evaluation decides them, mean or vote), the top-probability change distribution, accuracy, the
// targets, the names of the perturbations, the Markdown table and the videos near the boundary.
import { describe, expect, it } from 'vitest';
import { resizeRoundTrip } from '../../src/data/perturb.js';
import { DOWN_UP_FACTOR, PERTURBATION_NAMES, selectPerturbations } from '../../src/robustness/perturbations.js';
import { buildRobustnessReport, cleanCheckWarning, formatRobustnessMarkdown } from '../../src/robustness/report.js';
import { checkTargets, distribution, summarisePerturbation, topProbabilityChange, videosNearBoundary, type FrameRecord } from '../../src/robustness/stats.js';
import type { RobustnessMeasurement } from '../../src/robustness/measure.js';
import type { ConformalCalibration } from '../../src/eval/conformal.js';

const CLASSES = ['a', 'b', 'c'];

function frame(path: string, source: string, fold: number, clean: number[], perturbed?: number[]): FrameRecord {
  return {
    path,
    source,
    patient: source,
    fold,
    label: 'a',
    clean,
    perturbed: perturbed ? { 'noise-1': { probs: perturbed, pixelChange: 0.5, origin: 'stored' } } : {},
  };
}

// V1: one of three frames flips, the video does not. V2: the second frame flips and so does the
// video. I: an image the perturbation did not reach (left out of its counts).
const RECORDS: FrameRecord[] = [
  frame('v1-0', 'V1', 0, [0.6, 0.3, 0.1], [0.4, 0.5, 0.1]),
  frame('v1-1', 'V1', 0, [0.6, 0.3, 0.1], [0.58, 0.32, 0.1]),
  frame('v1-2', 'V1', 0, [0.6, 0.3, 0.1], [0.58, 0.32, 0.1]),
  frame('v2-0', 'V2', 1, [0.45, 0.55, 0], [0.45, 0.55, 0]),
  frame('v2-1', 'V2', 1, [0.9, 0.1, 0], [0.4, 0.6, 0]),
  frame('i', 'I', 1, [0.2, 0.2, 0.6]),
];

describe('distribution and top-probability change', () => {
  it('mean, median, p95 (linear interpolation) and max; nulls when empty', () => {
    expect(distribution([0.5, 0, 0.02, 0.2, 0.02])).toEqual({ mean: expect.closeTo(0.148, 12), median: 0.02, p95: expect.closeTo(0.44, 12), max: 0.5 });
    expect(distribution([])).toEqual({ mean: null, median: null, p95: null, max: null });
  });

  it('follows the class decided on the clean frame, not the new top class', () => {
    expect(topProbabilityChange([0.9, 0.1, 0], [0.4, 0.6, 0])).toBeCloseTo(0.5, 12);
    expect(topProbabilityChange([0.45, 0.55, 0], [0.55, 0.45, 0])).toBeCloseTo(0.1, 12);
    // Not the new top class's change (0.15), nor the change of the largest probability (0.05).
    expect(topProbabilityChange([0.5, 0.3, 0.2], [0.3, 0.45, 0.25])).toBeCloseTo(0.2, 12);
  });
});

describe('summarisePerturbation', () => {
  it('counts frame and video flips (mean decision), the change distribution and accuracy', () => {
    const s = summarisePerturbation({ name: 'noise-1', description: 'd' }, RECORDS, CLASSES, 'mean');
    expect(s).toMatchObject({ frames: 5, frameFlips: 2, frameFlipRate: 0.4, videos: 2, videoFlips: 1, videoFlipRate: 0.5, flippedVideos: ['V2'] });
    expect(s.meanTopProbChange).toBeCloseTo(0.148, 12);
    expect(s.medianTopProbChange).toBeCloseTo(0.02, 12);
    expect(s.p95TopProbChange).toBeCloseTo(0.44, 12);
    expect(s.maxTopProbChange).toBeCloseTo(0.5, 12);
    // Videos: V1 mean 0.6 → 0.52 for its decided class a; V2 0.675 → 0.425.
    expect(s.videoTopProbChange.mean).toBeCloseTo((0.08 + 0.25) / 2, 12);
    expect(s.videoTopProbChange.max).toBeCloseTo(0.25, 12);
    expect(s.accuracy.frame).toEqual({ clean: 0.8, perturbed: 0.4 });
    expect(s.accuracy.video).toEqual({ clean: 1, perturbed: 0.5 });
    expect(s.perFold).toEqual([
      { fold: 0, frames: 3, frameFlips: 1, videos: 1, videoFlips: 0 },
      { fold: 1, frames: 2, frameFlips: 1, videos: 1, videoFlips: 1 },
    ]);
    expect(s.pixelsFrom).toEqual({ native: 0, stored: 5 });
    expect(s.meanPixelChange).toBe(0.5);
  });

  it('decides videos by vote when asked: a video whose mean holds but whose majority changes flips', () => {
    // Clean: votes a, b, b → b (mean: a). Perturbed: votes a, a, b → a (mean: still a).
    const v3 = [
      frame('v3-0', 'V3', 0, [0.9, 0.1, 0], [0.9, 0.1, 0]),
      frame('v3-1', 'V3', 0, [0.4, 0.6, 0], [0.6, 0.4, 0]),
      frame('v3-2', 'V3', 0, [0.4, 0.6, 0], [0.4, 0.6, 0]),
    ];
    const byVote = summarisePerturbation({ name: 'noise-1', description: 'd' }, v3, CLASSES, 'vote');
    const byMean = summarisePerturbation({ name: 'noise-1', description: 'd' }, v3, CLASSES, 'mean');
    expect([byVote.videoFlips, byVote.flippedVideos, byVote.accuracy.video]).toEqual([1, ['V3'], { clean: 0, perturbed: 1 }]);
    expect([byMean.videoFlips, byMean.accuracy.video]).toEqual([0, { clean: 1, perturbed: 1 }]);
  });

  it('counts the videos whose prediction set changes and the flips the clean set already allowed, at video level or frame level for a still image', () => {
    // A set rule by hand: every class with probability ≥ 0.3. S is a still image that flips a → b.
    const levels: string[] = [];
    const setOf = (fold: number, level: 'frame' | 'video', probs: readonly number[]) => {
      levels.push(`${fold}:${level}`);
      return CLASSES.filter((_, k) => probs[k]! >= 0.3);
    };
    const still = frame('s', 'S', 0, [0.5, 0.45, 0.05], [0.2, 0.75, 0.05]);
    const s = summarisePerturbation({ name: 'noise-1', description: 'd' }, [...RECORDS, still], CLASSES, 'mean', setOf);
    // V1 {a, b} → {a, b}; V2 {a, b} → {a, b}, flipped a → b, b in its clean set; S {a, b} → {b}, flipped, b in its set.
    expect([s.videoFlips, s.flippedVideosInSet, s.videoSetChanges]).toEqual([2, 2, 1]);
    expect(levels.sort()).toEqual(['0:frame', '0:frame', '0:video', '0:video', '1:video', '1:video']);
    // A flip to a class outside the clean set is not counted as allowed.
    const narrow = summarisePerturbation({ name: 'noise-1', description: 'd' }, [still], CLASSES, 'mean', (_f, _l, probs) => [CLASSES[probs.indexOf(Math.max(...probs))]!]);
    expect([narrow.videoFlips, narrow.flippedVideosInSet, narrow.videoSetChanges]).toEqual([1, 0, 1]);
    // Without calibrations: null, not 0.
    expect(summarisePerturbation({ name: 'noise-1', description: 'd' }, RECORDS, CLASSES, 'mean')).toMatchObject({ videoSetChanges: null, flippedVideosInSet: null });
  });

  it('reports null rates, not 0, for a perturbation no frame had', () => {
    const s = summarisePerturbation({ name: 'h264', description: 'd' }, RECORDS, CLASSES, 'mean');
    expect(s).toMatchObject({ frames: 0, frameFlipRate: null, videos: 0, videoFlipRate: null, meanTopProbChange: null });
  });
});

describe('targets', () => {
  it('judges only the tracked perturbations and names each limit missed', () => {
    const s = summarisePerturbation({ name: 'noise-1', description: 'd' }, RECORDS, CLASSES, 'mean');
    expect(checkTargets(s)).toEqual({
      met: false,
      missed: ['frame flips 40.0% > 1.0%', 'video flips 1 > 0', 'mean top-probability change 0.1480 ≥ 0.01'],
    });
    const calmRecords = [frame('c-0', 'C', 0, [0.6, 0.3, 0.1], [0.595, 0.305, 0.1]), frame('c-1', 'C', 0, [0.7, 0.2, 0.1], [0.69, 0.21, 0.1])];
    const calm = summarisePerturbation({ name: 'noise-1', description: 'd' }, calmRecords, CLASSES, 'mean');
    expect(calm.meanTopProbChange).toBeCloseTo(0.0075, 12);
    expect(checkTargets(calm)).toEqual({ met: true, missed: [] });
    expect(checkTargets({ ...s, name: 'gain+5' })).toBeNull();
  });
});

describe('selectPerturbations', () => {
  it('keeps report order, takes comma lists, and names the valid ones for an unknown name', () => {
    expect(selectPerturbations(['jpeg-95,noise-1', 'h264']).map((p) => p.name)).toEqual(['noise-1', 'jpeg-95', 'h264']);
    expect(selectPerturbations().map((p) => p.name)).toEqual(PERTURBATION_NAMES);
    expect(PERTURBATION_NAMES).toEqual(['noise-1', 'noise-2', 'jpeg-95', 'jpeg-75', 'resize-bilinear', 'resize-area', 'resize-libvips', 'shift-1', 'gain+5', 'gain-5', 'h264']);
    expect(() => selectPerturbations(['noise-1,blur'])).toThrow(`unknown perturbation "blur"; valid: ${PERTURBATION_NAMES.join(', ')}`);
    expect(() => selectPerturbations([' , '])).toThrow(/no perturbation given; valid: noise-1/);
  });
});

describe('the perturbations by name', () => {
  it('draw noise per frame from (seed, name, path): same frame and path, same noise; another path or seed, another', async () => {
    const image = { width: 16, height: 16, rgb: new Uint8Array(16 * 16 * 3).fill(100) };
    const [noise] = selectPerturbations(['noise-1']);
    const source = { source: 's', kind: 'video' as const, paths: ['a.png', 'b.png', 'a.png'], stored: [image, image, image], native: async () => undefined };
    const once = await noise!.apply(source, { seed: 0, fps: 3 });
    const again = await noise!.apply(source, { seed: 0, fps: 3 });
    const reseeded = await noise!.apply(source, { seed: 1, fps: 3 });
    expect(once.images[0]!.rgb).toEqual(once.images[2]!.rgb);
    expect(once.images[0]!.rgb).not.toEqual(once.images[1]!.rgb);
    expect(again.images.map((i) => i.rgb)).toEqual(once.images.map((i) => i.rgb));
    expect(reseeded.images[0]!.rgb).not.toEqual(once.images[0]!.rgb);
    expect(once.origin).toBe('stored');
  });

  it('resize from the native frames when there are some, else down and up from the stored frame', async () => {
    const stored = { width: 8, height: 8, rgb: new Uint8Array(8 * 8 * 3).map((_, i) => (i * 37) % 256) };
    const native = { width: 20, height: 20, rgb: new Uint8Array(20 * 20 * 3).fill(60) };
    const [area] = selectPerturbations(['resize-area']);
    const fromNative = await area!.apply({ source: 's', kind: 'image', paths: ['a.png'], stored: [stored], native: async () => [native] }, { seed: 0, fps: 3 });
    expect(fromNative.origin).toBe('native');
    expect([fromNative.images[0]!.width, fromNative.images[0]!.height, new Set(fromNative.images[0]!.rgb)]).toEqual([8, 8, new Set([60])]);
    const fromStored = await area!.apply({ source: 's', kind: 'image', paths: ['a.png'], stored: [stored], native: async () => undefined }, { seed: 0, fps: 3 });
    expect(fromStored.origin).toBe('stored');
    expect(fromStored.images[0]!.rgb).toEqual(resizeRoundTrip(stored, 'area', DOWN_UP_FACTOR).rgb);
  });
});

describe('the report', () => {
  it('has the JSON shape of the issue and a Markdown line per perturbation', () => {
    const measurement: RobustnessMeasurement = {
      run: 'runs/x',
      data: 'data/x',
      classes: CLASSES,
      seed: 3,
      videoAggregation: 'mean',
      mirrorAverage: false,
      batchSize: 16,
      perturbations: selectPerturbations(['noise-1', 'h264']),
      folds: [
        { fold: 0, runtime: 'ort', frames: 3, model: 'm0' },
        { fold: 1, runtime: 'ort', frames: 3, model: 'm1' },
      ],
      native: { dir: null, unavailable: 'gone', fps: 3, maxFrames: 30, worstMismatch: 0, fallbacks: [] },
      skipped: [{ source: 'I', perturbation: 'h264', reason: 'why' }],
      records: RECORDS,
      cleanCheck: { frames: 6, maxAbsDifference: 1e-7, labelAgreement: 1 },
    };
    const report = buildRobustnessReport(measurement);
    expect(report.perturbations.map((p) => p.name)).toEqual(['noise-1', 'h264']);
    expect(report.perturbations[0]).toMatchObject({ name: 'noise-1', frameFlipRate: 0.4, videoFlipRate: 0.5, meanTopProbChange: expect.closeTo(0.148, 12), target: { met: false } });
    expect([report.frames, report.videos]).toEqual([6, 3]);
    const md = formatRobustnessMarkdown(report);
    expect(md).toContain('| noise-1 | 5 | 2/5 (40.0%) | 2 | 1/2 (50.0%) | – | – | 0.1480 | 0.0200 | 0.4400 | 0.5000 | 0.50 | stored | missed: frame flips 40.0% > 1.0%;');
    expect(md).toContain('| h264 | 0 | – | 0 | – | – |');
    expect(md).toContain('Native frames unavailable (gone)');
    expect(md).toContain('- I (h264): why');
    expect(md).not.toContain('Warning');
    expect(cleanCheckWarning(report)).toBeUndefined();
  });

  it('takes each fold\'s prediction sets from its own calibration', () => {
    // APS scores all 0.95: a set holds the classes until their mass passes 0.95.
    const calibration = (scores: number): ConformalCalibration => ({
      kind: 'pocovid-conformal', version: 1, method: 'aps', lambda: 0, kReg: 0, classes: CLASSES, coverage: 0.9, calibratedOn: 'validation',
      levels: { video: { n: 9, scores: Array(9).fill(scores) }, frame: { n: 9, scores: Array(9).fill(scores) } },
    });
    const measurement = (withSets: boolean): RobustnessMeasurement => ({
      run: 'r', data: 'd', classes: CLASSES, seed: 0, videoAggregation: 'mean', mirrorAverage: false, batchSize: 16,
      perturbations: selectPerturbations(['noise-1']),
      folds: [
        { fold: 0, runtime: 'ort', frames: 3, model: 'm0', conformal: calibration(0.95) },
        { fold: 1, runtime: 'ort', frames: 3, model: 'm1', ...(withSets ? { conformal: calibration(0.95) } : {}) },
      ],
      native: { dir: null, unavailable: 'gone', fps: 3, maxFrames: 30, worstMismatch: 0, fallbacks: [] },
      skipped: [], records: RECORDS, cleanCheck: { frames: 6, maxAbsDifference: 0, labelAgreement: 1 },
    });
    // V1: {a, b} before and after. V2: {a} → {b}, a flip to a class its clean set did not hold.
    expect(buildRobustnessReport(measurement(true)).perturbations[0]).toMatchObject({ videoFlips: 1, videoSetChanges: 1, flippedVideosInSet: 0 });
    // One fold without a calibration: no set figures rather than half of them.
    expect(buildRobustnessReport(measurement(false)).perturbations[0]).toMatchObject({ videoSetChanges: null, flippedVideosInSet: null });
    expect(formatRobustnessMarkdown(buildRobustnessReport(measurement(true)))).toContain('| noise-1 | 5 | 2/5 (40.0%) | 2 | 1/2 (50.0%) | 0 | 1 |');
  });

  it('warns when the clean pass does not reproduce the run\'s predictions', () => {
    const off = { cleanCheck: { frames: 10, maxAbsDifference: 0.04, labelAgreement: 0.9 } };
    expect(cleanCheckWarning(off)).toBe("the clean frames' probabilities differ from the run's predictions.csv by up to 0.040 (same label on 90.0%): the frames or their preprocessing are not those the run was evaluated on");
    expect(cleanCheckWarning({ cleanCheck: { frames: 10, maxAbsDifference: 2e-6, labelAgreement: 1 } })).toBeUndefined();
  });
});

describe('videosNearBoundary', () => {
  it("counts the videos whose mean (the evaluation's video rule) has its top two classes closer than the bound", () => {
    const records = [frame('1', 'V', 0, [0.6, 0.4, 0]), frame('2', 'V', 0, [0.44, 0.56, 0]), frame('3', 'W', 0, [0.9, 0.1, 0]), frame('4', 'X', 1, [0.2, 0.31, 0.49])];
    // V: mean 0.52 / 0.48 (0.04 apart); W: 0.8 apart; X: 0.18 apart.
    expect(videosNearBoundary(records, CLASSES, 0.03)).toBe(0);
    expect(videosNearBoundary(records, CLASSES, 0.05)).toBe(1);
    expect(videosNearBoundary(records, CLASSES, 0.2)).toBe(2);
    expect(videosNearBoundary(records, CLASSES, 1)).toBe(3);
  });
});
