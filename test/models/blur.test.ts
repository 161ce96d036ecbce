// The input low-pass (cfg.blur): a Gaussian of σ pixels applied where pixels become network input
// (src/models/preprocess.ts), so every front end and the trainer see the same smoothed frame.
import { describe, expect, it } from 'vitest';
import { blur as binomialBlur } from '../../src/explain/class_vis.js';
import { gaussianBlurInPlace, gaussianTaps } from '../../src/models/blur.js';
import { parseModelMeta } from '../../src/model_dir/meta.js';
import { pixelsToInput, preprocessorFor } from '../../src/models/preprocess.js';
import type { PretrainedCfg } from '../../src/models/types.js';

const size = 48;
const cfg = (blur?: number): PretrainedCfg => ({
  id: 'test',
  inputSize: [size, size],
  channels: 3,
  channelOrder: 'rgb',
  colour: 'grey',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  camLayer: 'c',
  classifier: 'd',
  featureLayer: 'f',
  sources: [],
  ...(blur ? { blur } : {}),
});

/** A grey picture with structure at several scales, deterministic. */
function picture(): Uint8Array {
  const rgb = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const v = Math.round(120 + 60 * Math.sin(x / 5) * Math.cos(y / 7) + (x > 20 && x < 28 ? 40 : 0));
      rgb.fill(v, (y * size + x) * 3, (y * size + x) * 3 + 3);
    }
  }
  return rgb;
}

/** ±1 grey level of noise, the same on all three channels (a grey frame stays grey). */
function withNoise(rgb: Uint8Array, seed: number): Uint8Array {
  let s = seed;
  const out = rgb.slice();
  for (let i = 0; i < size * size; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const d = (s >> 16) % 3 - 1;
    out.fill(Math.min(255, Math.max(0, rgb[i * 3]! + d)), i * 3, i * 3 + 3);
  }
  return out;
}

const rms = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((acc, v, i) => acc + (v - b[i]!) ** 2, 0) / a.length);

describe('input blur', () => {
  it('has normalised, symmetric Gaussian taps of radius ⌈3σ⌉ and refuses a bad σ', () => {
    const taps = gaussianTaps(1.2);
    expect(taps).toHaveLength(2 * 4 + 1);
    expect(taps.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    for (let k = 0; k < taps.length; k++) expect(taps[k]).toBeCloseTo(taps[taps.length - 1 - k]!, 7);
    expect(taps[4]! / taps[5]!).toBeCloseTo(Math.exp(1 / (2 * 1.44)), 5);
    expect(() => gaussianTaps(0)).toThrow(/positive/);
    expect(() => gaussianTaps(Number.NaN)).toThrow(/positive/);
  });

  it('spreads an impulse into the 2-d Gaussian, keeps its mass, and leaves a flat plane flat', () => {
    const n = 21;
    const plane = new Float32Array(n * n);
    plane[10 * n + 10] = 1;
    gaussianBlurInPlace(plane, n, n, 1, 0, 1);
    expect(plane.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const taps = gaussianTaps(1);
    expect(plane[10 * n + 10]).toBeCloseTo(taps[3]! * taps[3]!, 6);
    expect(plane[10 * n + 12]).toBeCloseTo(taps[3]! * taps[5]!, 6);
    expect(plane[12 * n + 11]).toBeCloseTo(taps[5]! * taps[4]!, 6);
    const flat = new Float32Array(5 * 7 * 3).fill(0.25);
    gaussianBlurInPlace(flat, 5, 7, 3, 1, 2);
    for (const v of flat) expect(v).toBeCloseTo(0.25, 6);
  });

  it('blurs one channel of an interleaved plane and no other', () => {
    const plane = new Float32Array(9 * 9 * 3);
    for (let c = 0; c < 3; c++) plane[(4 * 9 + 4) * 3 + c] = 1;
    gaussianBlurInPlace(plane, 9, 9, 3, 2, 1);
    expect(plane[(4 * 9 + 4) * 3]).toBe(1);
    expect(plane[(4 * 9 + 4) * 3 + 1]).toBe(1);
    expect(plane[(4 * 9 + 4) * 3 + 2]).toBeLessThan(0.2);
    expect(plane[(4 * 9 + 5) * 3 + 2]).toBeGreaterThan(0.05);
    expect(plane[(4 * 9 + 5) * 3]).toBe(0);
  });

  it("the class pictures' 3×3 binomial blur: an impulse becomes ¼·½·¼ weights on every channel, the input untouched", () => {
    const src = new Float32Array(5 * 5 * 3);
    for (let c = 0; c < 3; c++) src[(2 * 5 + 2) * 3 + c] = 1;
    const out = binomialBlur(src, 5, 5);
    expect(src[(2 * 5 + 2) * 3]).toBe(1);
    for (let c = 0; c < 3; c++) {
      expect(out[(2 * 5 + 2) * 3 + c]).toBeCloseTo(0.25, 7);
      expect(out[(2 * 5 + 3) * 3 + c]).toBeCloseTo(0.125, 7);
      expect(out[(1 * 5 + 3) * 3 + c]).toBeCloseTo(0.0625, 7);
      expect(out[(0 * 5 + 2) * 3 + c]).toBe(0);
    }
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(3, 6);
  });

  it('pixelsToInput with cfg.blur is the unblurred input blurred per channel, and shrinks the change ±1 grey level makes', () => {
    const clean = picture();
    const noisy = withNoise(clean, 7);
    const expected = pixelsToInput(clean, cfg());
    for (let c = 0; c < 3; c++) gaussianBlurInPlace(expected, size, size, 3, c, 1);
    const blurred = pixelsToInput(clean, cfg(1));
    for (let i = 0; i < blurred.length; i++) expect(blurred[i]).toBeCloseTo(expected[i]!, 6);
    // The same for a tinted frame (grey models blur one luma plane, colour ones each channel).
    const tinted = clean.map((v, i) => (i % 3 === 0 ? Math.min(255, v + 30) : i % 3 === 2 ? v >> 1 : v));
    for (const colour of ['grey', 'rgb'] as const) {
      const want = pixelsToInput(tinted, { ...cfg(), colour });
      for (let c = 0; c < 3; c++) gaussianBlurInPlace(want, size, size, 3, c, 1);
      const got = pixelsToInput(tinted, { ...cfg(1), colour });
      for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 5);
    }
    expect(() => pixelsToInput(new Uint8Array(10), cfg(1))).toThrow(/expected 48x48x3 = 6912 RGB values, got 10/);
    // Uniform noise of ±1 level is white: a σ = 1 Gaussian keeps about 1/(2√π·σ) ≈ 0.28 of its
    // amplitude; the picture's own structure (periods of 30 pixels and more) is kept.
    const before = rms(pixelsToInput(clean, cfg()), pixelsToInput(noisy, cfg()));
    const after = rms(pixelsToInput(clean, cfg(1)), pixelsToInput(noisy, cfg(1)));
    expect(after / before).toBeGreaterThan(0.2);
    expect(after / before).toBeLessThan(0.4);
    expect(rms(pixelsToInput(clean, cfg(1)), pixelsToInput(clean, cfg()))).toBeLessThan(0.25 * rms(pixelsToInput(clean, cfg()), new Float32Array(blurred.length)));
  });

  it('is part of the preprocessing key (the feature cache never mixes blurred and sharp features) and of a model folder\'s schema', () => {
    expect(preprocessorFor(cfg(1)).key).not.toBe(preprocessorFor(cfg()).key);
    expect(preprocessorFor(cfg(1)).key).not.toBe(preprocessorFor(cfg(2)).key);
    const meta = {
      format: 'pocovid-model',
      version: 1,
      name: 'm',
      classes: ['a', 'b'],
      cfg: cfg(1),
      members: ['member-0'],
      aggregation: 'mean',
      createdAt: '2026-12-03T00:00:00Z',
      source: {},
    };
    expect(parseModelMeta(meta).cfg.blur).toBe(1);
    expect(() => parseModelMeta({ ...meta, cfg: { ...cfg(), blur: -1 } })).toThrow(/blur/);
  });
});
