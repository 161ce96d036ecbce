// A dropped file → what the model worker decides from, in the browser's main thread. The type
// comes from the bytes (as in the CLI); PNG, JPEG and WebP go to the worker as they are (it decodes
// them: browser_image.ts), videos, GIFs and BMPs are decoded by ffmpeg.wasm (in its own worker)
// with the CLI's sampling rule. The model worker then resizes every frame by the one resize
// (decision_frames.ts) and decides.
import { BadInputError } from '../../errors.js';
import { describeUnknown, SNIFF_BYTES, sniffType, type SniffedType } from '../../media/formats.js';
import { DEFAULT_SAMPLING } from '../../media/sampling.js';
import { BROWSER_IMAGES } from './browser_image.js';
import { decodeInPage } from './ffmpeg_wasm.js';
import type { DecideSource } from './worker_protocol.js';

export interface PageInput {
  kind: 'image' | 'video';
  type: SniffedType;
  /** Native-size frames, or the image file itself; their buffers are handed to the model worker (transferred). */
  source: DecideSource;
  /** Seconds spent loading the video decoder for this file (0 when it was loaded already). */
  decoderLoadSeconds: number;
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
    return { kind: 'image', type, source: { image: { name: file.name, format: type.format, bytes } }, decoderLoadSeconds: 0 };
  }
  if (type.kind === 'image' && !type.demuxer) {
    throw new BadInputError(file.name, `${type.format.toUpperCase()} images are not decoded in the browser; convert it to PNG, or use pocovid predict`);
  }
  // Videos as `predict` samples them by default; a BMP as its one frame.
  const sampling = type.kind === 'video' ? { ...DEFAULT_SAMPLING } : { fps: 1, maxFrames: 1 };
  const { frames, decoderLoadSeconds } = await decodeInPage(file.name, bytes, type, sampling, onStatus);
  const native = frames.map((f) => ({ index: f.index, time: type.kind === 'video' ? f.time : 0, width: f.width, height: f.height, rgb: f.rgb }));
  return { kind: type.kind, type, source: { frames: native }, decoderLoadSeconds };
}
