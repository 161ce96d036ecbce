// DICOM pixel samples → 8-bit RGB, the one form every model input starts from. Handles the
// photometric interpretations ultrasound exports use (PS3.3 C.7.6.3.1.2): MONOCHROME1/2 (grey;
// more than 8 bits through the VOI window when the file has one), RGB, YBR_FULL and
// YBR_FULL_422 (converted with the JFIF full-range equations, rounded as pydicom rounds) and
// PALETTE COLOR (the red/green/blue lookup tables). Grey becomes R = G = B; a grey model takes
// one channel back out in preprocessing.

/** How one frame's samples are laid out and what they mean. */
export interface PixelFormat {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** 8 or 16. */
  bitsAllocated: number;
  bitsStored: number;
  /** Two's complement samples (Pixel Representation 1). */
  signed: boolean;
  photometric: string;
  /** VOI window (first values of Window Center / Width), applied to grey images of more than 8 bits. */
  window?: { center: number; width: number };
  /** Modality rescale, applied before the window. */
  rescale?: { slope: number; intercept: number };
  palette?: Palette;
}

/** PALETTE COLOR lookup tables, already reduced to 8 bits per entry. */
export interface Palette {
  firstMapped: number;
  red: Uint8Array;
  green: Uint8Array;
  blue: Uint8Array;
}

/** The interpretations toRgb8 understands (YBR_FULL_422 only as native, subsampled samples). */
export const SUPPORTED_PHOTOMETRIC = ['MONOCHROME1', 'MONOCHROME2', 'RGB', 'YBR_FULL', 'YBR_FULL_422', 'PALETTE COLOR'] as const;

/**
 * Samples of one frame as read from the file: `values` in stored order, either interleaved
 * (pixel by pixel, Planar Configuration 0) or plane by plane (1, and always after RLE). For
 * native YBR_FULL_422 the stored order is Y Y Cb Cr for each pair of pixels.
 */
export interface FrameSamples {
  values: ArrayLike<number>;
  planar: boolean;
}

/** A stored sample (up to 16 bits) masked to Bits Stored and sign-extended when signed. */
function storedValue(raw: number, format: PixelFormat): number {
  const bits = format.bitsStored;
  const masked = raw & ((1 << bits) - 1);
  return format.signed && masked >= 1 << (bits - 1) ? masked - (1 << bits) : masked;
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : v;
}

/** Maps one grey sample to 0..255: 8-bit samples as they are; deeper ones by the window, else their full stored range. */
function greyMapper(format: PixelFormat): (raw: number) => number {
  const invert = format.photometric === 'MONOCHROME1';
  if (format.bitsStored <= 8 && !format.signed) return invert ? (raw) => 255 - (raw & 0xff) : (raw) => raw & 0xff;
  const slope = format.rescale?.slope ?? 1;
  const intercept = format.rescale?.intercept ?? 0;
  let map: (value: number) => number;
  if (format.window && format.window.width >= 1) {
    // PS3.3 C.11.2.1.2.1: the linear VOI function.
    const { center, width } = format.window;
    const low = center - 0.5 - (width - 1) / 2;
    const high = center - 0.5 + (width - 1) / 2;
    map = (stored) => {
      const value = stored * slope + intercept;
      return value <= low ? 0 : value > high ? 255 : Math.round(((value - (center - 0.5)) / (width - 1) + 0.5) * 255);
    };
  } else {
    const low = format.signed ? -(2 ** (format.bitsStored - 1)) : 0;
    const high = format.signed ? 2 ** (format.bitsStored - 1) - 1 : 2 ** format.bitsStored - 1;
    map = (value) => Math.round(((value - low) * 255) / (high - low));
  }
  return invert ? (raw) => 255 - clampByte(map(storedValue(raw, format))) : (raw) => clampByte(map(storedValue(raw, format)));
}

/** YCbCr (full range) → RGB, the matrix and rounding pydicom's convert_color_space uses. */
function ybrToRgb(y: number, cb: number, cr: number, out: Uint8Array, at: number): void {
  const b = cb - 128;
  const r = cr - 128;
  out[at] = clampByte(Math.floor(y + 1.402 * r + 0.5));
  out[at + 1] = clampByte(Math.floor(y - ((0.114 * 1.772) / 0.587) * b - ((0.299 * 1.402) / 0.587) * r + 0.5));
  out[at + 2] = clampByte(Math.floor(y + 1.772 * b + 0.5));
}

/** Interleaved 8-bit RGB, columns × rows × 3, from one frame's samples. Throws an Error naming what is unsupported. */
export function toRgb8(samples: FrameSamples, format: PixelFormat): Uint8Array {
  const { rows, columns, samplesPerPixel, photometric } = format;
  const pixels = rows * columns;
  const v = samples.values;
  const out = new Uint8Array(pixels * 3);
  // Index of sample s of pixel i in the stored order.
  const at = samples.planar ? (i: number, s: number) => s * pixels + i : (i: number, s: number) => i * samplesPerPixel + s;
  const toByte = format.bitsAllocated > 8 ? (raw: number) => clampByte(storedValue(raw, { ...format, signed: false }) >> Math.max(0, format.bitsStored - 8)) : (raw: number) => raw & 0xff;
  switch (photometric) {
    case 'MONOCHROME1':
    case 'MONOCHROME2': {
      if (samplesPerPixel !== 1) throw new Error(`${photometric} with ${samplesPerPixel} samples per pixel`);
      const grey = greyMapper(format);
      for (let i = 0; i < pixels; i++) out.fill(grey(v[i]!), i * 3, i * 3 + 3);
      return out;
    }
    case 'RGB': {
      if (samplesPerPixel !== 3) throw new Error(`RGB with ${samplesPerPixel} samples per pixel`);
      for (let i = 0; i < pixels; i++) for (let s = 0; s < 3; s++) out[i * 3 + s] = toByte(v[at(i, s)]!);
      return out;
    }
    case 'YBR_FULL': {
      if (samplesPerPixel !== 3) throw new Error(`YBR_FULL with ${samplesPerPixel} samples per pixel`);
      for (let i = 0; i < pixels; i++) ybrToRgb(toByte(v[at(i, 0)]!), toByte(v[at(i, 1)]!), toByte(v[at(i, 2)]!), out, i * 3);
      return out;
    }
    case 'YBR_FULL_422': {
      // Native 4:2:2: each pair of pixels on a row stores Y1 Y2 Cb Cr (PS3.3 C.7.6.3.1.2).
      if (samplesPerPixel !== 3 || samples.planar) throw new Error('YBR_FULL_422 must have 3 samples per pixel, interleaved');
      if (columns % 2 !== 0) throw new Error(`YBR_FULL_422 needs an even number of columns, got ${columns}`);
      for (let pair = 0; pair < pixels / 2; pair++) {
        const cb = toByte(v[pair * 4 + 2]!);
        const cr = toByte(v[pair * 4 + 3]!);
        ybrToRgb(toByte(v[pair * 4]!), cb, cr, out, pair * 6);
        ybrToRgb(toByte(v[pair * 4 + 1]!), cb, cr, out, pair * 6 + 3);
      }
      return out;
    }
    case 'PALETTE COLOR': {
      const palette = format.palette;
      if (!palette) throw new Error('PALETTE COLOR without its red, green and blue lookup tables');
      if (samplesPerPixel !== 1) throw new Error(`PALETTE COLOR with ${samplesPerPixel} samples per pixel`);
      const last = palette.red.length - 1;
      for (let i = 0; i < pixels; i++) {
        // Indices below the first mapped value take the first entry, above the table the last (PS3.3 C.7.6.3.1.5).
        const index = Math.min(last, Math.max(0, storedValue(v[i]!, format) - palette.firstMapped));
        out[i * 3] = palette.red[index]!;
        out[i * 3 + 1] = palette.green[index]!;
        out[i * 3 + 2] = palette.blue[index]!;
      }
      return out;
    }
    default:
      throw new Error(`photometric interpretation ${photometric} is not supported (supported: ${SUPPORTED_PHOTOMETRIC.join(', ')})`);
  }
}

/** How many stored samples one native frame has (YBR_FULL_422 stores 2 per pixel, not 3). */
export function samplesPerFrame(format: PixelFormat): number {
  const pixels = format.rows * format.columns;
  return format.photometric === 'YBR_FULL_422' ? pixels * 2 : pixels * format.samplesPerPixel;
}
