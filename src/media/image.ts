// Still images → native-size RGB, in Node: sharp (libvips) for PNG, JPEG, WebP and TIFF, ffmpeg
// for BMP (which sharp cannot read). EXIF orientation applied, alpha dropped, grey and CMYK
// converted to sRGB, 8-bit interleaved RGB out; an optional crop box in displayed coordinates.
// Resizing is not done here but by src/media/resize.ts, the one resize of every frame.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { BadInputError } from '../errors.js';
import { checkImagePixels, MAX_IMAGE_PIXELS } from './accept.js';
import type { SniffedType } from './formats.js';
import type { DecodeLimits } from './limits.js';
import type { RgbImage } from './resize.js';
import type { CropSpec } from './sampling.js';
import { decodeVideoFrames } from './video.js';

export interface ImageDecodeOptions {
  /** The type already sniffed from the bytes; BMP needs it (and a file) to go through ffmpeg. */
  type?: SniffedType;
  limits?: Partial<DecodeLimits>;
  /** Box to cut out (top, left, size in displayed pixels), clamped to the image. */
  crop?: Pick<CropSpec, 'top' | 'left' | 'size'>;
  /** How the input is named in errors (default: the file, or "<image buffer>"). */
  name?: string;
}

/** Decodes an image file or buffer to native-size 8-bit RGB (cropped when asked). */
export async function decodeImageRgb(source: string | Uint8Array, options: ImageDecodeOptions = {}): Promise<RgbImage> {
  const name = options.name ?? (typeof source === 'string' ? source : '<image buffer>');
  if (options.type?.format === 'bmp') {
    if (typeof source !== 'string') throw new BadInputError(name, 'BMP is decoded from a file only');
    const { frames } = await decodeVideoFrames(source, { ...options.limits, fps: 1, maxFrames: 1, type: options.type, ...(options.crop ? { crop: options.crop } : {}) });
    return frames[0]!;
  }
  try {
    const input = typeof source === 'string' ? new Uint8Array(await readFile(source)) : source;
    // The size rule of every input (src/media/accept.ts), checked on the header before decoding.
    const meta = await sharp(input, { limitInputPixels: false }).metadata();
    checkImagePixels(name, meta.width ?? 0, meta.height ?? 0);
    // .rotate() applies EXIF orientation, as cv2 did in the original.
    let pipeline = sharp(input, { failOn: 'error', limitInputPixels: MAX_IMAGE_PIXELS }).rotate();
    if (options.crop) {
      // The crop is given in displayed (EXIF-oriented) coordinates.
      const width = meta.autoOrient?.width ?? meta.width ?? 0;
      const height = meta.autoOrient?.height ?? meta.height ?? 0;
      const { top, left, size } = options.crop;
      if (left >= width || top >= height) throw new BadInputError(name, `crop at top ${top}, left ${left} lies outside the ${width}x${height} image`);
      pipeline = pipeline.extract({ left, top, width: Math.min(size, width - left), height: Math.min(size, height - top) });
    }
    const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new BadInputError(name, `decoded to ${info.channels} channels, expected 3`);
    return { width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    if (err instanceof BadInputError) throw err;
    const what = options.type ? `cannot decode ${options.type.format} image` : 'not a readable image';
    throw new BadInputError(name, `${what} (${(err as Error).message})`, { cause: err });
  }
}
