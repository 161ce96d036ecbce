// Still images with sharp: decode, crop, resize to a square, always 8-bit interleaved RGB.
import sharp from 'sharp';
import { BadInputError } from '../errors.js';
import { checkImagePixels, MAX_IMAGE_PIXELS } from '../media/accept.js';
import type { CropSpec } from './crop.js';
import type { InputPreprocessor } from './types.js';

export interface RgbImage {
  width: number;
  height: number;
  /** Interleaved 8-bit RGB, width×height×3. */
  rgb: Uint8Array;
}

/**
 * Decodes an image file or buffer into RGB (grey and alpha images become plain RGB), optionally
 * cropped (clamped to the image) and resized to size (a side, or [height, width]).
 */
export async function decodeImage(input: string | Uint8Array, size?: number | [number, number], crop?: CropSpec): Promise<RgbImage> {
  const name = typeof input === 'string' ? input : '<image buffer>';
  try {
    // The same size rule as predict (src/media/accept.ts), checked on the header before decoding.
    const meta = await sharp(input, { limitInputPixels: false }).metadata();
    checkImagePixels(name, meta.width ?? 0, meta.height ?? 0);
    // .rotate() applies EXIF orientation, as cv2 did in the original and as inference does.
    let pipeline = sharp(input, { failOn: 'error', limitInputPixels: MAX_IMAGE_PIXELS }).rotate();
    if (crop) {
      // The crop is given in displayed (EXIF-oriented) coordinates.
      const width = meta.autoOrient?.width ?? meta.width ?? 0;
      const height = meta.autoOrient?.height ?? meta.height ?? 0;
      if (crop.left >= width || crop.top >= height) {
        throw new BadInputError(name, `crop at top ${crop.top}, left ${crop.left} lies outside the ${width}x${height} image`);
      }
      pipeline = pipeline.extract({ left: crop.left, top: crop.top, width: Math.min(crop.size, width - crop.left), height: Math.min(crop.size, height - crop.top) });
    }
    if (size !== undefined) {
      const [h, w] = typeof size === 'number' ? [size, size] : size;
      pipeline = pipeline.resize(w, h, { fit: 'fill' });
    }
    const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new BadInputError(name, `decoded to ${info.channels} channels, expected 3`);
    return { width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    if (err instanceof BadInputError) throw err;
    throw new BadInputError(name, `not a readable image (${(err as Error).message})`, { cause: err });
  }
}

/** An image file as network input: decoded, resized to the model's input size, preprocessed by it. */
export async function readImageAsInput(path: string | Uint8Array, preprocess: InputPreprocessor): Promise<Float32Array> {
  const image = await decodeImage(path, [preprocess.inputSize[0], preprocess.inputSize[1]]);
  return preprocess.toInput(image.rgb);
}

/** Encodes RGB pixels as PNG bytes. */
export async function encodePng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer();
}
