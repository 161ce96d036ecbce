// The one resize of every frame: `data build`, predict, the server and the in-browser page all
// resize decoded RGB with resizeRgb (Lanczos-3), so a frame gives the same pixels wherever it is
// read. Pure TypeScript on typed arrays (no sharp, no canvas): a canvas's drawImage and libvips
// each resample their own way, and the page must not disagree with the CLI because of it; the same
// JavaScript arithmetic gives the same bits in Node and in the browser. Fit 'fill' (no aspect
// kept, as cv2.resize in the original). The other kernels are choices another pipeline might
// make: src/robustness measures how much they move a decision, and augmentation may use them.

/** Interleaved 8-bit RGB pixels with their size. */
export interface RgbImage {
  width: number;
  height: number;
  /** width×height×3. */
  rgb: Uint8Array;
}

/**
 * bilinear: OpenCV's INTER_LINEAR (cv2.resize's default, which POCOVID-Net used; also what a
 *   canvas does at low smoothing quality): the two nearest source pixels per axis, no
 *   anti-aliasing, so a large reduction skips pixels.
 * area: each output pixel is the average of the source area it covers, weighted by the exact
 *   overlap (OpenCV's INTER_AREA when reducing).
 * lanczos3: the windowed sinc with 3 lobes, widened by the reduction factor so that it filters
 *   before it samples (PIL's LANCZOS). Same kernel as libvips' default, computed independently.
 */
export type ResizeKernel = 'bilinear' | 'area' | 'lanczos3';
export const RESIZE_KERNELS: readonly ResizeKernel[] = ['bilinear', 'area', 'lanczos3'];

/** The source taps of one output pixel along one axis: weights for indices start, start+1, ... */
interface Taps {
  start: number;
  weights: Float64Array;
}

function bilinearTaps(inSize: number, outSize: number): Taps[] {
  const scale = inSize / outSize;
  return Array.from({ length: outSize }, (_, i) => {
    // Pixel centres line up (half-pixel offset); positions past either edge take the edge pixel.
    const position = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), inSize - 1);
    const start = Math.min(Math.floor(position), Math.max(inSize - 2, 0));
    const fraction = position - start;
    return inSize === 1 ? { start: 0, weights: Float64Array.of(1) } : { start, weights: Float64Array.of(1 - fraction, fraction) };
  });
}

function areaTaps(inSize: number, outSize: number): Taps[] {
  const scale = inSize / outSize;
  return Array.from({ length: outSize }, (_, i) => {
    const from = i * scale;
    const to = (i + 1) * scale;
    const start = Math.floor(from);
    const end = Math.min(Math.ceil(to), inSize);
    const weights = new Float64Array(end - start);
    for (let j = start; j < end; j++) weights[j - start] = (Math.min(to, j + 1) - Math.max(from, j)) / scale;
    return { start, weights };
  });
}

const sinc = (x: number): number => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
const lanczos = (x: number): number => (Math.abs(x) < 3 ? sinc(x) * sinc(x / 3) : 0);

function lanczosTaps(inSize: number, outSize: number): Taps[] {
  const scale = inSize / outSize;
  const stretch = Math.max(scale, 1);
  const support = 3 * stretch;
  return Array.from({ length: outSize }, (_, i) => {
    const centre = (i + 0.5) * scale;
    // Taps outside the image are left out and the rest renormalised (PIL's rule), not clamped.
    const start = Math.max(Math.floor(centre - support), 0);
    const end = Math.min(Math.ceil(centre + support), inSize);
    const weights = new Float64Array(end - start);
    let sum = 0;
    for (let j = start; j < end; j++) sum += weights[j - start] = lanczos((j + 0.5 - centre) / stretch);
    for (let k = 0; k < weights.length; k++) weights[k]! /= sum;
    return { start, weights };
  });
}

const TAPS: Record<ResizeKernel, (inSize: number, outSize: number) => Taps[]> = {
  bilinear: bilinearTaps,
  area: areaTaps,
  lanczos3: lanczosTaps,
};

const tapCache = new Map<string, Taps[]>();

function tapsFor(kernel: ResizeKernel, inSize: number, outSize: number): Taps[] {
  const make = TAPS[kernel];
  if (!make) throw new Error(`unknown resize kernel "${kernel}"; valid: ${RESIZE_KERNELS.join(', ')}`);
  const key = `${kernel}|${inSize}|${outSize}`;
  let taps = tapCache.get(key);
  if (!taps) {
    if (tapCache.size > 64) tapCache.clear();
    taps = make(inSize, outSize);
    tapCache.set(key, taps);
  }
  return taps;
}

/**
 * Resizes interleaved RGB from width×height to outWidth×outHeight with `kernel` (default the
 * project's, Lanczos-3); a copy when the size is the same.
 */
export function resizeRgb(
  rgb: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  kernel: ResizeKernel = 'lanczos3',
): Uint8Array {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0) || rgb.length !== width * height * 3) {
    throw new Error(`image has ${rgb.length} values, expected ${width}x${height}x3`);
  }
  if (!(Number.isInteger(outWidth) && Number.isInteger(outHeight) && outWidth >= 1 && outHeight >= 1)) {
    throw new Error(`resize target must be positive integers, got ${outWidth}x${outHeight}`);
  }
  const across = tapsFor(kernel, width, outWidth);
  const down = tapsFor(kernel, height, outHeight);
  if (outWidth === width && outHeight === height) return Uint8Array.from(rgb);
  // Rows first, kept in float so that the only rounding is the final one.
  const rows = new Float64Array(height * outWidth * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outWidth; x++) {
      const { start, weights } = across[x]!;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < weights.length; k++) {
        const i = (y * width + start + k) * 3;
        const w = weights[k]!;
        r += w * rgb[i]!;
        g += w * rgb[i + 1]!;
        b += w * rgb[i + 2]!;
      }
      const o = (y * outWidth + x) * 3;
      rows[o] = r;
      rows[o + 1] = g;
      rows[o + 2] = b;
    }
  }
  const out = new Uint8Array(outWidth * outHeight * 3);
  const stride = outWidth * 3;
  for (let y = 0; y < outHeight; y++) {
    const { start, weights } = down[y]!;
    for (let x = 0; x < stride; x++) {
      let v = 0;
      for (let k = 0; k < weights.length; k++) v += weights[k]! * rows[(start + k) * stride + x]!;
      // Lanczos overshoots at edges: clamp to the 8-bit range.
      out[y * stride + x] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return out;
}

/** `image` resized to width×height (stretched, like every resize in the project) with `kernel`. */
export function resizeImage(image: RgbImage, width: number, height: number, kernel: ResizeKernel = 'lanczos3'): RgbImage {
  return { width, height, rgb: resizeRgb(image.rgb, image.width, image.height, width, height, kernel) };
}
