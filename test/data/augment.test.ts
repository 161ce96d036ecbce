import { describe, expect, it } from 'vitest';
import { Augmenter, flipAffine, pocovidAugmenter, randomDepthZoom, randomGain, randomGreyNoise, resampleAffine, rotationAffine, shiftAffine, ultrasoundAugmenter } from '../../src/data/augment.js';
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

describe('ultrasound augmentation', () => {
  const scaling = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

  it('never flips vertically: the top row of the picture stays near the top', () => {
    const aug = ultrasoundAugmenter(scaling);
    const rng = createRng(2);
    for (let i = 0; i < 300; i++) {
      const [, m01, , m10, m11, ty] = aug.sample(rng, 100, 100);
      // y' = m10·x + m11·y + ty: a vertical flip would make m11 negative.
      expect(m11).toBeGreaterThan(0.9);
      expect(Math.abs(m01)).toBeLessThan(Math.sin((5 * Math.PI) / 180) * 1.2 + 1e-9);
      // The top centre moves by at most the 5% shift, rotation and zoom.
      expect(Math.abs(m10 * 49.5 + ty)).toBeLessThan(12);
    }
    expect(aug.describe()).not.toContain('flip(hv)');
  });

  it('depth zoom enlarges the top of the picture, anchored at the top centre', () => {
    const [s, , tx, , s2, ty] = randomDepthZoom(0.2).sample(createRng(4), 50, 51);
    expect(s).toBe(s2);
    expect(s).toBeGreaterThanOrEqual(1);
    expect(s).toBeLessThanOrEqual(1 / 0.8 + 1e-9);
    expect(s * 25 + tx).toBeCloseTo(25, 9);
    expect(ty).toBe(0);
  });

  it('intensity changes act on the picture values and are clipped to the valid range', () => {
    // Inputs in network space (v − 0.5) / 0.5: a mid-grey picture with one white pixel.
    const img = new Float32Array(4 * 4 * 3).fill(0);
    img.fill(1, 0, 3);
    const gainOnly = new Augmenter([], [randomGain(1.25)], scaling);
    const out = gainOnly.apply(img, [4, 4, 3], createRng(9));
    const grey = out[3]! * 0.5 + 0.5;
    // Mid-grey 0.5 times a gain in [0.8, 1.25]; white stays at 1 (clipped), never above.
    expect(grey).toBeGreaterThanOrEqual(0.4 - 1e-6);
    expect(grey).toBeLessThanOrEqual(0.625 + 1e-6);
    expect(grey).not.toBeCloseTo(0.5, 4);
    expect(Math.max(...out)).toBeLessThanOrEqual(1 + 1e-6);
    const noisy = new Augmenter([], [randomGreyNoise(2)], scaling).apply(new Float32Array(8 * 8 * 3), [8, 8, 3], createRng(1));
    let changed = 0;
    for (let p = 0; p < noisy.length; p += 3) {
      const levels = (noisy[p]! * 0.5 + 0.5 - 0.5) * 255;
      expect(Math.abs(levels)).toBeLessThanOrEqual(2 + 1e-4);
      // The same noise on every channel of a pixel: a grey picture stays grey.
      expect(noisy[p + 1]).toBe(noisy[p]);
      if (Math.abs(levels) > 0.1) changed++;
    }
    expect(changed).toBeGreaterThan(40);
  });

  it('is deterministic under a seed', () => {
    const aug = ultrasoundAugmenter(scaling);
    const img = Float32Array.from({ length: 16 * 16 * 3 }, (_, i) => ((i * 7) % 13) / 13 - 0.5);
    expect(Array.from(aug.apply(img, [16, 16, 3], createRng(5)))).toEqual(Array.from(aug.apply(img, [16, 16, 3], createRng(5))));
    expect(() => new Augmenter([], [randomGain(1.1)])).toThrow(/scaling/);
  });
});
