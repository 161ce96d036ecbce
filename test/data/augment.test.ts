import { describe, expect, it } from 'vitest';
import { Augmenter, flipAffine, pocovidAugmenter, resampleAffine, rotationAffine, shiftAffine } from '../../src/data/augment.js';
import { createRng } from '../../src/util/rng.js';

/** An H×W×C image that is zero except one pixel. */
function onePixel(h: number, w: number, c: number, y: number, x: number, value = 1): Float32Array {
  const img = new Float32Array(h * w * c);
  for (let ch = 0; ch < c; ch++) img[(y * w + x) * c + ch] = value * (ch + 1);
  return img;
}
const at = (img: Float32Array, w: number, c: number, y: number, x: number, ch = 0) => img[(y * w + x) * c + ch]!;

describe('augmentation geometry', () => {
  it('rotates 90° counter-clockwise about the centre: a pixel right of centre goes above it', () => {
    // 5×5, centre (2,2); pixel at row 2, column 4 → row 0, column 2.
    const out = resampleAffine(onePixel(5, 5, 3, 2, 4), 5, 5, 3, rotationAffine(90, 5, 5));
    expect(at(out, 5, 3, 0, 2, 0)).toBeCloseTo(1, 5);
    expect(at(out, 5, 3, 0, 2, 2)).toBeCloseTo(3, 5);
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(6, 4);
  });

  it('shifts by whole pixels exactly', () => {
    const out = resampleAffine(onePixel(6, 8, 1, 1, 2), 6, 8, 1, shiftAffine(3, 2));
    expect(at(out, 8, 1, 3, 5)).toBe(1);
    expect(out.reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('flips horizontally and vertically', () => {
    const h = resampleAffine(onePixel(4, 6, 1, 1, 0), 4, 6, 1, flipAffine(true, false, 4, 6));
    expect(at(h, 6, 1, 1, 5)).toBe(1);
    const v = resampleAffine(onePixel(4, 6, 1, 1, 0), 4, 6, 1, flipAffine(false, true, 4, 6));
    expect(at(v, 6, 1, 2, 0)).toBe(1);
  });

  it('fills with the nearest edge pixel', () => {
    // Column ramp: value = column; shifting right by 2 repeats column 0 in the first columns.
    const w = 5;
    const img = Float32Array.from({ length: 3 * w }, (_, i) => i % w);
    const out = resampleAffine(img, 3, w, 1, shiftAffine(2, 0));
    expect(Array.from(out.slice(0, w))).toEqual([0, 0, 0, 1, 2]);
    const left = resampleAffine(img, 3, w, 1, shiftAffine(-2, 0));
    expect(Array.from(left.slice(0, w))).toEqual([2, 3, 4, 4, 4]);
  });

  it('interpolates half-pixel shifts bilinearly', () => {
    const img = Float32Array.from([0, 10, 20, 30]);
    const out = resampleAffine(img, 1, 4, 1, shiftAffine(0.5, 0));
    expect(Array.from(out)).toEqual([0, 5, 15, 25]);
  });

  it('is deterministic under a seed, varies across seeds, and stays within the configured ranges', () => {
    const aug = pocovidAugmenter();
    const img = Float32Array.from({ length: 16 * 16 * 3 }, (_, i) => (i * 7) % 13);
    const a = aug.apply(img, [16, 16, 3], createRng(5));
    const b = aug.apply(img, [16, 16, 3], createRng(5));
    const c = aug.apply(img, [16, 16, 3], createRng(6));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    const rng = createRng(1);
    for (let i = 0; i < 200; i++) {
      const [m00, m01, tx, m10, m11, ty] = aug.sample(rng, 100, 100);
      // Rotation ≤ 10° (a flip only changes signs); the centre moves by the shift alone, ≤ 10%.
      expect(Math.abs(m00)).toBeGreaterThanOrEqual(Math.cos((10 * Math.PI) / 180) - 1e-9);
      expect(Math.abs(m01)).toBeLessThanOrEqual(Math.sin((10 * Math.PI) / 180) + 1e-9);
      expect(Math.abs(m00 * m11 - m01 * m10)).toBeCloseTo(1, 9);
      expect(Math.abs(m00 * 49.5 + m01 * 49.5 + tx - 49.5)).toBeLessThanOrEqual(10 + 1e-9);
      expect(Math.abs(m10 * 49.5 + m11 * 49.5 + ty - 49.5)).toBeLessThanOrEqual(10 + 1e-9);
    }
  });

  it('applies nothing when every part is disabled', () => {
    const aug = pocovidAugmenter({ rotation: 0, widthShift: 0, heightShift: 0, horizontalFlip: false, verticalFlip: false });
    expect(aug.transforms).toHaveLength(0);
    const img = Float32Array.from({ length: 12 }, (_, i) => i);
    expect(Array.from(aug.apply(img, [2, 2, 3], createRng(0)))).toEqual(Array.from(img));
    expect(new Augmenter([]).describe()).toBe('none');
  });
});
