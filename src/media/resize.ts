// The one resize of every frame: `data build`, predict, the server and the in-browser page all
// resize decoded RGB with this function, so a frame gives the same pixels wherever it is read.
// Pure TypeScript on typed arrays (no sharp, no canvas): a canvas's drawImage and libvips each
// resample their own way, and the page must not disagree with the CLI because of it.
//
// Separable Lanczos-3, widened by the scale factor when shrinking (antialiasing, as Pillow and
// libvips do), fit 'fill' (no aspect kept, as cv2.resize in the original). The weights are
// integers (22 fractional bits) and every sum is exact in a double, so the result is the same
// to the bit on every JavaScript engine; the horizontal pass is rounded to 8 bits before the
// vertical one, as in Pillow.

/** Interleaved 8-bit RGB pixels with their size. */
export interface RgbImage {
  width: number;
  height: number;
  /** width×height×3. */
  rgb: Uint8Array;
}

const SUPPORT = 3;
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

function lanczos3(x: number): number {
  return x > -SUPPORT && x < SUPPORT ? sinc(x) * sinc(x / SUPPORT) : 0;
}

/** For each output coordinate: the first input coordinate it reads and its integer weights. */
interface AxisWeights {
  first: Int32Array;
  taps: number;
  /** out × taps integer weights summing to ONE (zero-padded). */
  weights: Float64Array;
}

const weightCache = new Map<string, AxisWeights>();

function axisWeights(inSize: number, outSize: number): AxisWeights {
  const key = `${inSize}>${outSize}`;
  const cached = weightCache.get(key);
  if (cached) return cached;
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = SUPPORT * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const weights = new Float64Array(outSize * taps);
  const real = new Float64Array(taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    let total = 0;
    for (let i = lo; i < hi; i++) total += real[i - lo] = lanczos3((i - center + 0.5) / filterScale);
    // Integer weights: their sum is ONE within a few units, far below what rounding to 8 bits sees.
    for (let i = 0; i < hi - lo; i++) weights[o * taps + i] = Math.round((real[i]! / total) * ONE);
    first[o] = lo;
  }
  const result = { first, taps, weights };
  if (weightCache.size > 64) weightCache.clear();
  weightCache.set(key, result);
  return result;
}

const clampByte = (sum: number): number => {
  // sum / ONE rounded half up, then clamped: integer arithmetic throughout.
  const v = Math.floor((sum + ONE / 2) / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** Resizes along x: rows of `width` → rows of `outWidth`. */
function resizeRows(src: Uint8Array, width: number, height: number, outWidth: number): Uint8Array {
  const { first, taps, weights } = axisWeights(width, outWidth);
  const out = new Uint8Array(outWidth * height * 3);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < outWidth; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      const base = x * taps;
      let p = row + first[x]! * 3;
      const n = Math.min(taps, width - first[x]!);
      for (let k = 0; k < n; k++, p += 3) {
        const w = weights[base + k]!;
        if (w === 0) continue;
        r += w * src[p]!;
        g += w * src[p + 1]!;
        b += w * src[p + 2]!;
      }
      const o = (y * outWidth + x) * 3;
      out[o] = clampByte(r);
      out[o + 1] = clampByte(g);
      out[o + 2] = clampByte(b);
    }
  }
  return out;
}

/** Resizes along y: `height` rows → `outHeight` rows, each `width` wide. */
function resizeColumns(src: Uint8Array, width: number, height: number, outHeight: number): Uint8Array {
  const { first, taps, weights } = axisWeights(height, outHeight);
  const out = new Uint8Array(width * outHeight * 3);
  const stride = width * 3;
  for (let y = 0; y < outHeight; y++) {
    const base = y * taps;
    const n = Math.min(taps, height - first[y]!);
    const top = first[y]! * stride;
    for (let x = 0; x < stride; x++) {
      let sum = 0;
      let p = top + x;
      for (let k = 0; k < n; k++, p += stride) {
        const w = weights[base + k]!;
        if (w !== 0) sum += w * src[p]!;
      }
      out[y * stride + x] = clampByte(sum);
    }
  }
  return out;
}

/** Resizes interleaved RGB from width×height to outWidth×outHeight (a copy when the size is the same). */
export function resizeRgb(rgb: Uint8Array | Uint8ClampedArray, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0) || rgb.length !== width * height * 3) {
    throw new Error(`resizeRgb: ${rgb.length} values are not ${width}x${height} RGB`);
  }
  if (!(Number.isInteger(outWidth) && Number.isInteger(outHeight) && outWidth > 0 && outHeight > 0)) {
    throw new Error(`resizeRgb: bad output size ${outWidth}x${outHeight}`);
  }
  const src = rgb instanceof Uint8Array ? rgb : new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.length);
  const rows = outWidth === width ? src : resizeRows(src, width, height, outWidth);
  const both = outHeight === height ? rows : resizeColumns(rows, outWidth, height, outHeight);
  return both === src ? Uint8Array.from(src) : both;
}

/** An image resized to [height, width] (a side N means N×N). */
export function resizeImage(image: RgbImage, size: number | readonly [number, number]): RgbImage {
  const [height, width] = typeof size === 'number' ? [size, size] : size;
  return { width, height, rgb: resizeRgb(image.rgb, image.width, image.height, width, height) };
}
