// A dropped file → native-size frames, in the browser's main thread. The type comes from the
// bytes (as in the CLI); images are decoded by the browser at their native size, videos, GIFs and
// BMPs by ffmpeg.wasm (in its own worker) with the CLI's sampling rule. The model worker then
// resizes every frame by the one resize (decision_frames.ts) and decides.
import { BadInputError } from '../../errors.js';
import { describeUnknown, SNIFF_BYTES, sniffType, type SniffedType } from '../../media/formats.js';
import type { RgbImage } from '../../media/resize.js';
import { DEFAULT_SAMPLING } from '../../media/sampling.js';
import type { NativeFrame } from './decision_frames.js';
import { decodeInPage } from './ffmpeg_wasm.js';

export interface PageInput {
  kind: 'image' | 'video';
  type: SniffedType;
  /** Native size; their buffers are handed to the model worker (transferred). */
  frames: NativeFrame[];
  /** Seconds spent loading the video decoder for this file (0 when it was loaded already). */
  decoderLoadSeconds: number;
}

/** The formats the browser decodes itself, losslessly or with the same libjpeg as sharp. */
const BROWSER_IMAGES = new Set(['png', 'jpeg', 'webp']);

/** Native-size RGB of an image the browser decodes: no colour management, no premultiplied alpha. */
async function browserImage(name: string, bytes: Uint8Array<ArrayBuffer>, type: SniffedType): Promise<RgbImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], { type: `image/${type.format}` }), {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
      imageOrientation: 'from-image',
    });
  } catch {
    throw new BadInputError(name, `this browser cannot decode this ${type.format} image`);
  }
  const { width, height } = bitmap;
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
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

/** Reads a dropped file into frames; BadInputError (naming the file) when it cannot. */
export async function readInput(file: File, onStatus: (line: string) => void): Promise<PageInput> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const head = bytes.subarray(0, SNIFF_BYTES);
  const type = sniffType(head);
  if (!type) throw new BadInputError(file.name, describeUnknown(head));
  // The DICOM decoder needs Node (dicom-parser, sharp for JPEG-compressed frames).
  if (type.format === 'dicom') throw new BadInputError(file.name, 'DICOM files are not decoded in the browser; use pocovid predict or the server, which read DICOM cine loops and images');
  if (type.kind === 'image' && BROWSER_IMAGES.has(type.format)) {
    return { kind: 'image', type, frames: [{ ...(await browserImage(file.name, bytes, type)), index: 0, time: 0 }], decoderLoadSeconds: 0 };
  }
  if (type.kind === 'image' && !type.demuxer) {
    throw new BadInputError(file.name, `${type.format.toUpperCase()} images are not decoded in the browser; convert it to PNG, or use pocovid predict`);
  }
  // Videos as `predict` samples them by default; a BMP as its one frame.
  const sampling = type.kind === 'video' ? { ...DEFAULT_SAMPLING } : { fps: 1, maxFrames: 1 };
  const { frames, decoderLoadSeconds } = await decodeInPage(file.name, bytes, type, sampling, onStatus);
  return { kind: type.kind, type, frames: frames.map((f) => ({ index: f.index, time: type.kind === 'video' ? f.time : 0, width: f.width, height: f.height, rgb: f.rgb })), decoderLoadSeconds };
}
