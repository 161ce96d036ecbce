// The one resize (src/media/resize.ts): exact where it must be, antialiased when shrinking, and
// close to the libvips Lanczos-3 that `data build` used before it (so older datasets still fit).
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { resizeImage, resizeRgb } from '../../src/media/resize.js';
import { createRng } from '../../src/util/rng.js';
import { pattern } from '../helpers/media_fixtures.js';

function constant(width: number, height: number, value: number): Uint8Array {
  return new Uint8Array(width * height * 3).fill(value);
}

function mirror(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out.set(rgb.subarray((y * width + x) * 3, (y * width + x) * 3 + 3), (y * width + (width - 1 - x)) * 3);
  }
  return out;
}

describe('resizeRgb', () => {
  it('copies a frame already at the size, without sharing its buffer', () => {
    const rgb = pattern(10, 7, 2);
    const out = resizeRgb(rgb, 10, 7, 10, 7);
    expect(out).toEqual(rgb);
    expect(out.buffer).not.toBe(rgb.buffer);
  });

  it('keeps a flat picture flat at any size (the weights sum to one exactly)', () => {
    for (const [w, h, ow, oh] of [[50, 30, 7, 9], [5, 5, 64, 3], [640, 480, 224, 224], [3, 1, 1, 1]] as const) {
      for (const v of [0, 1, 128, 254, 255]) expect(new Set(resizeRgb(constant(w, h, v), w, h, ow, oh))).toEqual(new Set([v]));
    }
  });

  it('is symmetric: resizing the mirror image gives the mirror of the result', () => {
    const rgb = pattern(37, 23, 5);
    expect(resizeRgb(mirror(rgb, 37, 23), 37, 23, 16, 11)).toEqual(mirror(resizeRgb(rgb, 37, 23, 16, 11), 16, 11));
  });

  it('averages detail away when shrinking instead of picking pixels (antialiasing)', () => {
    // Shrinking 3× puts each output's centre on an input pixel: an unwidened kernel picks it.
    const w = 63;
    const checker = new Uint8Array(w * w * 3);
    for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) checker.fill((x + y) % 2 ? 255 : 0, (y * w + x) * 3, (y * w + x) * 3 + 3);
    const out = resizeRgb(checker, w, w, 21, 21);
    for (const v of out) expect(Math.abs(v - 127.5)).toBeLessThanOrEqual(2);
  });

  it('shrinks speckle as libvips Lanczos-3 does, within a grey level on average', async () => {
    // Noise tells kernels apart (a triangle kernel is ~7 levels off here, no antialiasing ~47).
    const [w, h] = [160, 120];
    const rng = createRng(1);
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) rgb.fill(Math.floor(rng.next() * 256), i * 3, i * 3 + 3);
    const ours = resizeRgb(rgb, w, h, 64, 48);
    const vips = new Uint8Array(await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).resize(64, 48, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer());
    let total = 0;
    let worst = 0;
    for (let i = 0; i < ours.length; i++) {
      const d = Math.abs(ours[i]! - vips[i]!);
      total += d;
      worst = Math.max(worst, d);
    }
    expect(total / ours.length).toBeLessThan(1);
    expect(worst).toBeLessThanOrEqual(8);
  });

  it('resizes an image to width×height, and refuses sizes that do not match the data', () => {
    const image = { width: 20, height: 10, rgb: pattern(20, 10, 1) };
    expect(resizeImage(image, 8, 5)).toMatchObject({ width: 8, height: 5 });
    expect(resizeImage(image, 6, 6).rgb).toEqual(resizeRgb(image.rgb, 20, 10, 6, 6, 'lanczos3'));
    expect(() => resizeRgb(new Uint8Array(10), 2, 2, 1, 1)).toThrow(/image has 10 values, expected 2x2x3/);
    expect(() => resizeRgb(pattern(2, 2), 2, 2, 0, 1)).toThrow(/positive integers/);
  });
});
