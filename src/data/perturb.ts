// Small changes a real pipeline makes to a frame's pixels before the network sees them: sensor or
// codec noise of a grey level or two, JPEG re-encoding, another resize, a crop off by a pixel, a
// gain change. Each takes and returns 8-bit RGB (the pixels `data build` stores and `predict`
// decodes, before preprocessing) and never changes its input. All but JPEG are pure TypeScript;
// randomness comes from an injected Rng. Used by `pocovid robustness` (src/robustness) and meant
// for training augmentation too.
import sharp from 'sharp';
import type { Rng } from '../util/rng.js';
import type { RgbImage } from '../media/resize.js';
import { resizeImage, type ResizeKernel } from '../media/resize.js';

const clampByte = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : v);

function checkImage(image: RgbImage): void {
  if (image.rgb.length !== image.width * image.height * 3) {
    throw new Error(`image has ${image.rgb.length} values, expected ${image.width}x${image.height}x3`);
  }
}

/**
 * Adds to every pixel an integer offset drawn uniformly from [−amplitude, amplitude], the same for
 * R, G and B (a grey-level change: ultrasound is grey stored as RGB), clamped to 0..255.
 * Amplitude 1 leaves a third of the pixels as they were and moves the rest by one grey level.
 */
export function addGreyNoise(image: RgbImage, amplitude: number, rng: Rng): RgbImage {
  checkImage(image);
  if (!(Number.isInteger(amplitude) && amplitude >= 0)) throw new Error(`noise amplitude must be a non-negative integer, got ${amplitude}`);
  const rgb = new Uint8Array(image.rgb.length);
  const levels = 2 * amplitude + 1;
  for (let p = 0; p < rgb.length; p += 3) {
    const offset = rng.int(levels) - amplitude;
    rgb[p] = clampByte(image.rgb[p]! + offset);
    rgb[p + 1] = clampByte(image.rgb[p + 1]! + offset);
    rgb[p + 2] = clampByte(image.rgb[p + 2]! + offset);
  }
  return { width: image.width, height: image.height, rgb };
}

/** Multiplies every value by `gain` (1.05 = 5% brighter), rounded and clamped to 0..255. */
export function applyGain(image: RgbImage, gain: number): RgbImage {
  checkImage(image);
  if (!(Number.isFinite(gain) && gain > 0)) throw new Error(`gain must be a positive number, got ${gain}`);
  const rgb = new Uint8Array(image.rgb.length);
  for (let i = 0; i < rgb.length; i++) rgb[i] = clampByte(Math.round(image.rgb[i]! * gain));
  return { width: image.width, height: image.height, rgb };
}

/**
 * Moves the content right by dx and down by dy whole pixels (negative: left, up). The rows and
 * columns uncovered at the edge repeat the nearest edge pixel, as a crop box moved by a pixel
 * would show the frame's border continued.
 */
export function shiftImage(image: RgbImage, dx: number, dy: number): RgbImage {
  checkImage(image);
  if (!(Number.isInteger(dx) && Number.isInteger(dy))) throw new Error(`shift must be whole pixels, got (${dx}, ${dy})`);
  const { width, height } = image;
  const rgb = new Uint8Array(image.rgb.length);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(Math.max(y - dy, 0), height - 1);
    for (let x = 0; x < width; x++) {
      const sx = Math.min(Math.max(x - dx, 0), width - 1);
      const o = (y * width + x) * 3;
      const s = (sy * width + sx) * 3;
      rgb[o] = image.rgb[s]!;
      rgb[o + 1] = image.rgb[s + 1]!;
      rgb[o + 2] = image.rgb[s + 2]!;
    }
  }
  return { width, height, rgb };
}

/**
 * JPEG bytes of the frame at `quality` (1–100) with libjpeg's standard (Annex K) quantisation
 * tables scaled by quality and 4:2:0 chroma: what a camera, a browser's canvas.toBlob or a PACS
 * export writes by default. Options are spelt out so a change of sharp's defaults cannot move them.
 */
export async function encodeJpeg(image: RgbImage, quality: number): Promise<Uint8Array> {
  checkImage(image);
  if (!(Number.isInteger(quality) && quality >= 1 && quality <= 100)) throw new Error(`JPEG quality must be an integer in 1..100, got ${quality}`);
  const bytes = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:2:0', mozjpeg: false, quantisationTable: 0, trellisQuantisation: false, overshootDeringing: false, optimiseScans: false })
    .toBuffer();
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The frame encoded as JPEG at `quality` and decoded again (libjpeg-turbo through sharp). */
export async function jpegRoundTrip(image: RgbImage, quality: number): Promise<RgbImage> {
  const jpeg = await encodeJpeg(image, quality);
  const { data, info } = await sharp(jpeg).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.width !== image.width || info.height !== image.height || info.channels !== 3) {
    throw new Error(`JPEG round trip gave ${info.width}x${info.height}x${info.channels}, expected ${image.width}x${image.height}x3`);
  }
  return { width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/**
 * The frame resized down by `factor` and back to its own size, both ways with `kernel`: what a
 * kernel does to a frame when only the already-resized frame is at hand (no native-size source).
 * It is harsher than resizing once from the native frame, since detail lost going down stays lost.
 */
export function resizeRoundTrip(image: RgbImage, kernel: ResizeKernel, factor: number): RgbImage {
  checkImage(image);
  if (!(factor > 0 && factor < 1)) throw new Error(`round-trip factor must be in (0, 1), got ${factor}`);
  const down = resizeImage(image, Math.max(1, Math.round(image.width * factor)), Math.max(1, Math.round(image.height * factor)), kernel);
  return resizeImage(down, image.width, image.height, kernel);
}

/** Mean absolute difference of two frames of one size, in grey levels (the size of a perturbation). */
export function meanAbsoluteDifference(a: RgbImage, b: RgbImage): number {
  if (a.width !== b.width || a.height !== b.height || a.rgb.length !== b.rgb.length) {
    throw new Error(`cannot compare a ${a.width}x${a.height} frame with a ${b.width}x${b.height} one`);
  }
  let sum = 0;
  for (let i = 0; i < a.rgb.length; i++) sum += Math.abs(a.rgb[i]! - b.rgb[i]!);
  return sum / a.rgb.length;
}
