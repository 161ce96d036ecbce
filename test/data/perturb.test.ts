// Each perturbation does what it claims: noise within ±k grey levels and the same for R, G and B,
// JPEG written with the standard tables at the asked quality and 4:2:0 chroma, a shift by exactly
// one pixel, a gain of exactly the asked ratio; the resize kernels match hand-computed values.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { RgbImage } from '../../src/media/resize.js';
import { addGreyNoise, applyGain, encodeJpeg, jpegRoundTrip, meanAbsoluteDifference, resizeRoundTrip, shiftImage } from '../../src/data/perturb.js';
import { RESIZE_KERNELS, resizeImage } from '../../src/media/resize.js';
import { PHANTOM_CLASSES, renderPhantomFrame, samplePhantomScene } from '../../src/data/phantom.js';
import { createRng } from '../../src/util/rng.js';

function phantom(size = 64, seed = 3): RgbImage {
  const rng = createRng(seed);
  const scene = samplePhantomScene(PHANTOM_CLASSES[0]!, size, rng);
  return { width: size, height: size, rgb: renderPhantomFrame(scene, 0, rng) };
}

function grey(width: number, height: number, value: (x: number, y: number) => number): RgbImage {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.fill(value(x, y), (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { width, height, rgb };
}

const at = (image: RgbImage, x: number, y: number, c = 0): number => image.rgb[(y * image.width + x) * 3 + c]!;

describe('addGreyNoise', () => {
  it.each([1, 2])('moves every pixel by at most ±%i grey levels, R, G and B alike, both extremes drawn, zero mean', (k) => {
    const image = grey(64, 64, (x, y) => 40 + ((x * 7 + y * 13) % 160)); // away from 0 and 255: no clamping
    const before = image.rgb.slice();
    const noisy = addGreyNoise(image, k, createRng(11));
    expect(image.rgb).toEqual(before); // input untouched
    const offsets: number[] = [];
    for (let p = 0; p < noisy.rgb.length; p += 3) {
      const d = noisy.rgb[p]! - image.rgb[p]!;
      expect(noisy.rgb[p + 1]! - image.rgb[p + 1]!).toBe(d);
      expect(noisy.rgb[p + 2]! - image.rgb[p + 2]!).toBe(d);
      offsets.push(d);
    }
    expect(Math.max(...offsets)).toBe(k);
    expect(Math.min(...offsets)).toBe(-k);
    // Every level in [-k, k] appears about equally often (4096 draws).
    for (let v = -k; v <= k; v++) expect(offsets.filter((d) => d === v).length / offsets.length).toBeCloseTo(1 / (2 * k + 1), 1);
    expect(Math.abs(offsets.reduce((a, b) => a + b, 0) / offsets.length)).toBeLessThan(0.05);
  });

  it('is seeded: the same stream gives the same frame, another stream another; black stays in range', () => {
    const image = phantom();
    expect(addGreyNoise(image, 1, createRng(5)).rgb).toEqual(addGreyNoise(image, 1, createRng(5)).rgb);
    expect(addGreyNoise(image, 1, createRng(5)).rgb).not.toEqual(addGreyNoise(image, 1, createRng(6)).rgb);
    const black = addGreyNoise(grey(8, 8, () => 0), 2, createRng(1));
    const white = addGreyNoise(grey(8, 8, () => 255), 2, createRng(1));
    expect(Math.max(...black.rgb)).toBeLessThanOrEqual(2);
    expect(Math.min(...white.rgb)).toBeGreaterThanOrEqual(253);
  });
});

describe('applyGain', () => {
  it.each([1.05, 0.95])('multiplies every value by %f (rounded), clamping at 255', (gain) => {
    const image = grey(16, 16, (x, y) => x * 16 + y);
    const out = applyGain(image, gain);
    for (let i = 0; i < image.rgb.length; i++) expect(out.rgb[i]).toBe(Math.min(255, Math.round(image.rgb[i]! * gain)));
    const mid = grey(4, 4, () => 200);
    expect(applyGain(mid, gain).rgb[0]! / 200).toBeCloseTo(gain, 2);
  });
});

describe('shiftImage', () => {
  it('moves the content right by exactly one pixel, repeating the first column', () => {
    const image = phantom(32);
    const out = shiftImage(image, 1, 0);
    for (let y = 0; y < 32; y++) {
      expect(at(out, 0, y)).toBe(at(image, 0, y));
      for (let x = 1; x < 32; x++) for (let c = 0; c < 3; c++) expect(at(out, x, y, c)).toBe(at(image, x - 1, y, c));
    }
  });

  it('moves up and left with negative steps', () => {
    const image = grey(5, 4, (x, y) => 10 * y + x);
    const out = shiftImage(image, -1, -2);
    expect(at(out, 0, 0)).toBe(at(image, 1, 2));
    expect(at(out, 4, 1)).toBe(at(image, 4, 3)); // last column repeats
    expect(at(out, 2, 3)).toBe(at(image, 3, 3)); // last row repeats
  });
});

// Annex K tables in natural order and libjpeg's quality scaling, to check what the encoder wrote.
const LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99];
const CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, ...new Array<number>(32).fill(99)];
const ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63];

function expectedTable(base: number[], quality: number): number[] {
  const scale = quality < 50 ? Math.floor(5000 / quality) : 200 - 2 * quality;
  return ZIGZAG.map((natural) => Math.min(255, Math.max(1, Math.floor((base[natural]! * scale + 50) / 100))));
}

/** The quantisation tables (zigzag order, by table id) and the component sampling factors of a baseline JPEG. */
function readJpeg(bytes: Uint8Array): { tables: Map<number, number[]>; sampling: number[] } {
  const tables = new Map<number, number[]>();
  let sampling: number[] = [];
  let i = 2;
  while (i < bytes.length) {
    if (bytes[i] !== 0xff) throw new Error(`no marker at ${i}`);
    const marker = bytes[i + 1]!;
    const length = (bytes[i + 2]! << 8) | bytes[i + 3]!;
    const body = bytes.subarray(i + 4, i + 2 + length);
    if (marker === 0xdb) {
      for (let j = 0; j < body.length; j += 65) {
        if (body[j]! >> 4 !== 0) throw new Error('16-bit table');
        tables.set(body[j]! & 15, Array.from(body.subarray(j + 1, j + 65)));
      }
    } else if (marker === 0xc0) {
      sampling = Array.from({ length: body[5]! }, (_, c) => body[6 + 3 * c + 1]!);
    } else if (marker === 0xda) {
      break;
    }
    i += 2 + length;
  }
  return { tables, sampling };
}

describe('JPEG re-encoding', () => {
  it.each([95, 75])('writes libjpeg\'s standard tables scaled for quality %i, with 4:2:0 chroma', async (quality) => {
    const bytes = await encodeJpeg(phantom(), quality);
    const { tables, sampling } = readJpeg(bytes);
    expect(tables.get(0)).toEqual(expectedTable(LUMA, quality));
    expect(tables.get(1)).toEqual(expectedTable(CHROMA, quality));
    expect(sampling).toEqual([0x22, 0x11, 0x11]);
  });

  it('decodes back to a frame of the same size that differs, less at 95 than at 75', async () => {
    const image = phantom();
    const q95 = await jpegRoundTrip(image, 95);
    const q75 = await jpegRoundTrip(image, 75);
    expect([q95.width, q95.height, q95.rgb.length]).toEqual([64, 64, 64 * 64 * 3]);
    const d95 = meanAbsoluteDifference(image, q95);
    const d75 = meanAbsoluteDifference(image, q75);
    expect(d95).toBeGreaterThan(0);
    expect(d95).toBeLessThan(d75);
    expect(d75).toBeLessThan(8);
    // The decoded frame is what any decoder makes of those bytes.
    const direct = await sharp(await encodeJpeg(image, 95)).raw().toBuffer();
    expect(Buffer.from(q95.rgb).equals(direct)).toBe(true);
  });
});

describe('resizeImage', () => {
  it('leaves a frame of the target size as it is, and a flat frame flat, with every kernel', () => {
    const image = phantom(24);
    const flat = grey(37, 23, () => 77);
    for (const kernel of RESIZE_KERNELS) {
      expect(resizeImage(image, 24, 24, kernel).rgb).toEqual(image.rgb);
      const out = resizeImage(flat, 16, 11, kernel);
      expect([out.width, out.height]).toEqual([16, 11]);
      expect(new Set(out.rgb)).toEqual(new Set([77]));
    }
  });

  it('bilinear: OpenCV INTER_LINEAR\'s half-pixel sampling without anti-aliasing', () => {
    // 4 → 2 samples source x = 0.5 and 2.5: the mean of pixels 0,1 and of pixels 2,3.
    const row = grey(4, 1, (x) => [0, 100, 200, 40][x]!);
    expect(Array.from(resizeImage(row, 2, 1, 'bilinear').rgb.filter((_, i) => i % 3 === 0))).toEqual([50, 120]);
    // 6 → 2 samples x = 1 and 4 exactly: pixels 1 and 4, the others are skipped.
    const six = grey(6, 1, (x) => [0, 10, 250, 250, 30, 90][x]!);
    expect(Array.from(resizeImage(six, 2, 1, 'bilinear').rgb.filter((_, i) => i % 3 === 0))).toEqual([10, 30]);
    // 2 → 4: x = -0.25 (edge), 0.25, 0.75, 1.25 (edge).
    const two = grey(2, 1, (x) => [0, 200][x]!);
    expect(Array.from(resizeImage(two, 4, 1, 'bilinear').rgb.filter((_, i) => i % 3 === 0))).toEqual([0, 50, 150, 200]);
  });

  it('area: exact overlap weights', () => {
    // 3 → 2: output 0 covers pixel 0 and half of pixel 1; output 1 the other half and pixel 2.
    const row = grey(3, 1, (x) => [30, 90, 150][x]!);
    expect(Array.from(resizeImage(row, 2, 1, 'area').rgb.filter((_, i) => i % 3 === 0))).toEqual([50, 130]);
    const six = grey(6, 1, (x) => [0, 10, 250, 250, 30, 90][x]!);
    expect(Array.from(resizeImage(six, 2, 1, 'area').rgb.filter((_, i) => i % 3 === 0))).toEqual([87, 123]);
  });

  it('lanczos3: close to libvips\' Lanczos-3 on a reduction, yet not the same bytes', async () => {
    const image = phantom(96);
    const ours = resizeImage(image, 40, 40, 'lanczos3');
    const vips = await sharp(image.rgb, { raw: { width: 96, height: 96, channels: 3 } }).resize(40, 40, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
    const theirs = { width: 40, height: 40, rgb: new Uint8Array(vips) };
    expect(meanAbsoluteDifference(ours, theirs)).toBeLessThan(1.5);
    expect(meanAbsoluteDifference(ours, theirs)).toBeGreaterThan(0);
    // ...and much closer than a kernel that does not filter before sampling.
    expect(meanAbsoluteDifference(resizeImage(image, 40, 40, 'bilinear'), theirs)).toBeGreaterThan(2 * meanAbsoluteDifference(ours, theirs));
  });

  it('resizeRoundTrip keeps the size and changes the frame; the factor is checked', () => {
    const image = phantom(64);
    for (const kernel of RESIZE_KERNELS) {
      const out = resizeRoundTrip(image, kernel, 0.75);
      expect([out.width, out.height]).toEqual([64, 64]);
      expect(meanAbsoluteDifference(image, out)).toBeGreaterThan(0.5);
    }
    expect(() => resizeRoundTrip(image, 'area', 1)).toThrow(/factor must be in \(0, 1\)/);
    expect(() => resizeImage(image, 0, 3, 'area')).toThrow(/positive integers/);
  });
});

describe("the 'pipeline' augmentation (one perturbation per training view)", () => {
  it('draws every change, keeps the size, changes a frame by a few grey levels at most, and is reproduced by its seed', async () => {
    const { pipelineView, PIPELINE_CHANGE_NAMES } = await import('../../src/data/pipeline_augment.js');
    const image = phantom(64, 5);
    const before = image.rgb.slice();
    const seen = new Set<string>();
    for (let seed = 0; seed < 60; seed++) {
      const view = await pipelineView(image, createRng(seed));
      seen.add(view.change);
      expect([view.image.width, view.image.height]).toEqual([64, 64]);
      const difference = meanAbsoluteDifference(image, view.image);
      expect(difference, view.change).toBeGreaterThan(0);
      if (view.change === 'shift-1') {
        // The phantom's fine texture makes a 1-pixel shift large in grey levels: it must be one of the four.
        const shifts = [[1, 0], [-1, 0], [0, 1], [0, -1]].map(([dx, dy]) => shiftImage(image, dx!, dy!));
        expect(shifts.some((s) => Buffer.from(s.rgb).equals(Buffer.from(view.image.rgb)))).toBe(true);
      } else {
        expect(difference, view.change).toBeLessThan(8);
      }
      const again = await pipelineView(image, createRng(seed));
      expect(again.change).toBe(view.change);
      expect(Buffer.from(again.image.rgb).equals(Buffer.from(view.image.rgb))).toBe(true);
    }
    expect([...seen].sort()).toEqual([...PIPELINE_CHANGE_NAMES].sort());
    expect(Buffer.from(image.rgb).equals(Buffer.from(before))).toBe(true);
  });
});
