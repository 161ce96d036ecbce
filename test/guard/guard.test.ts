// The not-ultrasound guard: fitted on (phantom) ultrasound frames, it must pass unseen ones and
// flag blank frames, noise, text screenshots, drawings and the like.
import { describe, expect, it } from 'vitest';
import { PHANTOM_CLASSES, renderPhantomFrame, samplePhantomScene } from '../../src/data/phantom.js';
import { FEATURE_NAMES, frameFeatures, GUARD_SIZE, resizeRgb } from '../../src/guard/features.js';
import { checkFeatures, checkFrame, fitGuard, isGuardStats } from '../../src/guard/guard.js';
import { syntheticNegatives } from '../../src/guard/negatives.js';
import { createRng } from '../../src/util/rng.js';

const SIZE = 160;

function phantomFrames(seed: number, scenesPerClass: number, framesPerScene: number): Uint8Array[] {
  const rng = createRng(seed);
  const out: Uint8Array[] = [];
  for (let s = 0; s < scenesPerClass; s++) {
    for (const label of PHANTOM_CLASSES) {
      const sceneRng = rng.fork();
      const scene = samplePhantomScene(label, SIZE, sceneRng);
      for (let t = 0; t < framesPerScene; t++) out.push(renderPhantomFrame(scene, t * 3, sceneRng));
    }
  }
  return out;
}

describe('guard features', () => {
  it('describes simple images as expected', () => {
    const n = GUARD_SIZE * GUARD_SIZE;
    const grey = new Uint8Array(n * 3).fill(128);
    const f = frameFeatures(grey, GUARD_SIZE, GUARD_SIZE);
    const at = (name: string, v: number[]) => v[FEATURE_NAMES.indexOf(name as never)]!;
    expect(at('lumaStd', f)).toBeCloseTo(0, 6);
    expect(at('colourfulness', f)).toBeCloseTo(0, 6);
    expect(at('darkFraction', f)).toBe(0);

    const rng = createRng(3);
    const noise = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) noise[i * 3] = noise[i * 3 + 1] = noise[i * 3 + 2] = rng.int(256);
    const fn = frameFeatures(noise, GUARD_SIZE, GUARD_SIZE);
    // Independent pixels: no spatial correlation; uniform on [0, 1] has std 1/sqrt(12).
    expect(Math.abs(at('neighbourCorrelation', fn))).toBeLessThan(0.05);
    expect(at('lumaStd', fn)).toBeCloseTo(1 / Math.sqrt(12), 1);

    const red = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) red[i * 3] = 255;
    expect(at('colourfulness', frameFeatures(red, GUARD_SIZE, GUARD_SIZE))).toBeCloseTo(1, 6);
  });

  it('resizes any frame size to the guard size with a box filter', () => {
    const rgb = new Uint8Array(4 * 2 * 3);
    // 4×2 image: left half 0, right half 200 → 2×1: [0, 200].
    for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) rgb.fill(x < 2 ? 0 : 200, (y * 4 + x) * 3, (y * 4 + x) * 3 + 3);
    expect(Array.from(resizeRgb(rgb, 4, 2, 2, 1))).toEqual([0, 0, 0, 200, 200, 200]);
    expect(() => frameFeatures(rgb, 5, 2)).toThrow(/expected 5x2x3 values, got 24/);
  });
});

describe('guard', () => {
  const train = phantomFrames(1, 8, 3).map((rgb) => frameFeatures(rgb, SIZE, SIZE));
  const stats = fitGuard(train);

  it('passes unseen ultrasound frames', () => {
    const unseen = phantomFrames(99, 4, 3);
    const flagged = unseen.filter((rgb) => checkFrame(rgb, SIZE, SIZE, stats).flagged).length;
    expect(flagged / unseen.length).toBeLessThanOrEqual(0.05);
  });

  it('flags blank frames, noise, gradients, checkerboards, text screenshots and drawings, with a reason', async () => {
    const negatives = await syntheticNegatives(createRng(5), 2, 200);
    for (const image of negatives) {
      const verdict = checkFrame(image.rgb, image.width, image.height, stats);
      expect(verdict.flagged, image.name).toBe(true);
      expect(verdict.reason, image.name).toMatch(/^(blank frame \(no contrast\)|unlike the ultrasound frames this model was trained on \(distance \d+\.\d > \d+\.\d; furthest: .+\))$/);
    }
    const black = negatives.find((n) => n.name === 'blank-black')!;
    expect(checkFrame(black.rgb, black.width, black.height, stats).reason).toBe('blank frame (no contrast)');
  });

  it('sets the threshold from the fitted frames and survives a JSON round trip', () => {
    const distances = train.map((f) => checkFeatures(f, stats).score).sort((a, b) => a - b);
    // 99.5th percentile × 1.25: every fitted frame lies under the threshold.
    expect(distances.at(-1)!).toBeLessThanOrEqual(stats.threshold);
    const copy = JSON.parse(JSON.stringify(stats)) as unknown;
    expect(isGuardStats(copy)).toBe(true);
    expect(isGuardStats({ ...stats, version: 2 })).toBe(false);
    expect(() => fitGuard(train.slice(0, 5))).toThrow(/at least 16 frames/);
  });
});

describe('guard evaluation', () => {
  it('scores real frames with a guard fitted on the other folds and reports non-ultrasound pass rates', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { writeTinyDataset } = await import('../helpers/tiny_dataset.js');
    const { evaluateGuard, formatGuardEvaluation } = await import('../../src/guard/evaluate.js');
    const dir = mkdtempSync(join(tmpdir(), 'pocovid-guard-'));
    try {
      const rows = await writeTinyDataset(dir, { patientsPerClass: 6, framesPerVideo: 3, folds: 3, size: 96 });
      const result = await evaluateGuard(dir);
      expect(result.realFrames).toBe(rows.length);
      const perFold = Object.values(result.realFlaggedPerFold);
      expect(perFold.reduce((n, f) => n + f.frames, 0)).toBe(rows.length);
      expect(result.realFlaggedRate).toBeLessThanOrEqual(0.1);
      expect(result.negatives.length).toBeGreaterThan(3);
      for (const kind of result.negatives) expect(kind.passed, kind.kind).toBe(0);
      expect(formatGuardEvaluation(result)).toMatch(/Real frames wrongly flagged/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
