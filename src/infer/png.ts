// PNG encoding for Node (the page uses a canvas instead).
import sharp from 'sharp';

export async function rgbToPng(rgb: Uint8Array | Uint8ClampedArray, width: number, height: number): Promise<Buffer> {
  return sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

export async function rgbToPngDataUrl(rgb: Uint8Array | Uint8ClampedArray, width: number, height: number): Promise<string> {
  return `data:image/png;base64,${(await rgbToPng(rgb, width, height)).toString('base64')}`;
}

/** The bytes of a data:image/png;base64 URL. */
export function dataUrlToBytes(url: string): Buffer {
  const comma = url.indexOf(',');
  return Buffer.from(url.slice(comma + 1), 'base64');
}
