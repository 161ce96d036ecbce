// Resizing decoded RGB frames: the one resize of every frame, in `data build` and in inference.
import sharp from 'sharp';

/** Resizes raw RGB to width×height (fit 'fill': no aspect kept, as cv2.resize in the original). */
export async function resizeRgb(rgb: Uint8Array, width: number, height: number, size: number | [number, number]): Promise<Uint8Array> {
  const [outH, outW] = typeof size === 'number' ? [size, size] : size;
  if (outW === width && outH === height) return Uint8Array.from(rgb);
  const data = await sharp(rgb, { raw: { width, height, channels: 3 } })
    .resize(outW, outH, { fit: 'fill' })
    .raw()
    .toBuffer();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
