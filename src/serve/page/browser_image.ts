// PNG, JPEG and WebP decoded by the browser at their native size, in the model worker
// (createImageBitmap and OffscreenCanvas exist there): a 12-megapixel photo takes about a second
// to draw, read back and repack, which on the main thread froze the page (measured: one 926 ms
// task for a 4000×3000 PNG in headless Chromium). No colour management, no premultiplied alpha:
// the pixels as stored, as sharp gives them to predict.
import { BadInputError } from '../../errors.js';
import type { RgbImage } from '../../media/resize.js';

/** The formats the browser decodes itself, losslessly or with the same libjpeg as sharp. */
export const BROWSER_IMAGES: ReadonlySet<string> = new Set(['png', 'jpeg', 'webp']);

/** An image file the worker decodes: its bytes (transferred) and its format, from the bytes. */
export interface EncodedImage {
  name: string;
  format: string;
  bytes: Uint8Array;
}

export async function decodeBrowserImage(image: EncodedImage): Promise<RgbImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([image.bytes as Uint8Array<ArrayBuffer>], { type: `image/${image.format}` }), {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
      imageOrientation: 'from-image',
    });
  } catch {
    throw new BadInputError(image.name, `this browser cannot decode this ${image.format} image`);
  }
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' }).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i]!;
    rgb[j + 1] = rgba[i + 1]!;
    rgb[j + 2] = rgba[i + 2]!;
  }
  return { width, height, rgb };
}
