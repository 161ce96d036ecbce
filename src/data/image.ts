// Still images for datasets: decode (src/media/image.ts), crop, resize with the one resize
// (src/media/resize.ts), always 8-bit interleaved RGB; and dataset frames as network input.
import sharp from 'sharp';
import { decodeImageRgb } from '../media/image.js';
import { resizeImage, type RgbImage } from '../media/resize.js';
import type { CropSpec } from './crop.js';
import type { InputPreprocessor } from './types.js';

/**
 * Decodes an image file or buffer into RGB (grey and alpha images become plain RGB), optionally
 * cropped (clamped to the image) and resized to size (a side, or [height, width]).
 */
export async function decodeImage(input: string | Uint8Array, size?: number | [number, number], crop?: CropSpec): Promise<RgbImage> {
  const image = await decodeImageRgb(input, crop ? { crop } : {});
  if (size === undefined) return image;
  const [height, width] = typeof size === 'number' ? [size, size] : size;
  return resizeImage(image, width, height);
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
