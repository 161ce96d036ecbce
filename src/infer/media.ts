// Files → RGB frames at the model's input size. Images through sharp (BMP through ffmpeg, which
// sharp cannot read), videos through the one decoder (src/media/video.ts) that `data build` also
// uses, so predict samples and resizes a video's frames exactly as the dataset did. The type
// always comes from the bytes (sniffType); a bad file becomes a BadInputError naming the file.
// DICOM files go through src/media/dicom_frames.ts, sampled by the same rule as videos.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { BadInputError } from '../errors.js';
import { checkImagePixels, MAX_IMAGE_PIXELS } from '../media/accept.js';
import { decodeDicomFrames } from '../media/dicom_frames.js';
import type { DecodeLimits } from '../media/ffmpeg.js';
import { describeUnknown, sniffFile, sniffType, SNIFF_BYTES, type SniffedType } from '../media/sniff.js';
import { decodeVideoFrames } from '../media/video.js';

export interface Frame {
  /** Interleaved RGB, width×height×3. */
  rgb: Uint8Array;
  width: number;
  height: number;
  index: number;
  /** Seconds from the start (0 for images). */
  time: number;
  /** Native frame number in the video (0 for images; absent for frames not decoded here). */
  sourceFrame?: number;
}

function sniffBytes(name: string, bytes: Uint8Array): SniffedType {
  const head = bytes.subarray(0, SNIFF_BYTES);
  const type = sniffType(head);
  if (!type) throw new BadInputError(name, describeUnknown(head));
  return type;
}

/** Decodes an image (bytes or a file) resized to width×height (stretched, as in training). */
export async function decodeImageTo(
  source: string | Uint8Array,
  width: number,
  height: number,
  type?: SniffedType,
  limits?: Partial<DecodeLimits>,
): Promise<Frame> {
  const name = typeof source === 'string' ? source : '(image bytes)';
  const sniffed = type ?? (typeof source === 'string' ? await sniffFile(source) : sniffBytes(name, source));
  if (sniffed.format === 'dicom') {
    const clip = await decodeDicomTo(typeof source === 'string' ? source : { name, bytes: source }, width, height, { fps: 1, maxFrames: 1, limits });
    if (clip.kind !== 'image') throw new BadInputError(name, `is a multi-frame DICOM file (${clip.frameCount} frames), not an image`);
    return clip.frames[0]!;
  }
  if (sniffed.kind !== 'image') throw new BadInputError(name, `is a ${sniffed.format} video, not an image`);
  if (sniffed.format === 'bmp') {
    if (typeof source !== 'string') throw new BadInputError(name, 'BMP is decoded from a file only');
    const { frames } = await decodeVideoFrames(source, { ...limits, fps: 1, maxFrames: 1, size: [height, width], type: sniffed });
    return frames[0]!;
  }
  const bytes = typeof source === 'string' ? new Uint8Array(await readFile(source)) : source;
  // The size rule data build applies too (src/media/accept.ts), on the header before decoding.
  const meta = await sharp(bytes, { limitInputPixels: false }).metadata().catch((err: Error) => {
    throw new BadInputError(name, `cannot decode ${sniffed.format} image (${err.message})`);
  });
  checkImagePixels(name, meta.width ?? 0, meta.height ?? 0);
  try {
    const { data } = await sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS, failOn: 'error' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (data.length !== width * height * 3) throw new Error(`unexpected decoded size ${data.length}`);
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height, index: 0, time: 0, sourceFrame: 0 };
  } catch (err) {
    throw new BadInputError(name, `cannot decode ${sniffed.format} image (${(err as Error).message})`);
  }
}

export interface VideoSampling {
  /** Frames per second sampled (default 3, as in POCOVID-Net and `data build`). */
  fps?: number;
  /** At most this many frames (default 30). */
  maxFrames?: number;
  limits?: Partial<DecodeLimits>;
}

/** Samples a video file into frames at width×height (same frames and pixels as `data build --size`). */
export async function decodeVideoTo(file: string, width: number, height: number, sampling: VideoSampling = {}, type?: SniffedType): Promise<Frame[]> {
  const sniffed = type ?? (await sniffFile(file));
  if (sniffed.format === 'dicom') return (await decodeDicomTo(file, width, height, sampling)).frames;
  if (sniffed.kind !== 'video' || !sniffed.demuxer) throw new BadInputError(file, `is a ${sniffed.format} image, not a video`);
  const fps = sampling.fps ?? 3;
  if (!(fps > 0 && fps <= 60)) throw new BadInputError(file, `fps must be in (0, 60], got ${fps}`);
  const maxFrames = sampling.maxFrames ?? 30;
  const { frames } = await decodeVideoFrames(file, { ...sampling.limits, fps, maxFrames, size: [height, width], type: sniffed });
  return frames;
}

/**
 * A DICOM file (path, or bytes with a name) sampled as decodeVideoTo samples a video, at
 * width×height. `kind` is 'image' for a single-frame file, 'video' for a cine loop.
 */
export async function decodeDicomTo(
  source: string | { name: string; bytes: Uint8Array },
  width: number,
  height: number,
  sampling: VideoSampling = {},
): Promise<{ kind: 'image' | 'video'; frameCount: number; frames: Frame[] }> {
  const name = typeof source === 'string' ? source : source.name;
  const fps = sampling.fps ?? 3;
  if (!(fps > 0 && fps <= 60)) throw new BadInputError(name, `fps must be in (0, 60], got ${fps}`);
  const { info, frames } = await decodeDicomFrames(source, { ...sampling.limits, fps, maxFrames: sampling.maxFrames ?? 30, size: [height, width] });
  return { kind: info.frameCount === 1 ? 'image' : 'video', frameCount: info.frameCount, frames };
}
