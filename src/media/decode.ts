// Files → RGB frames at a model's input size, in Node (predict, serve, explain, int8 calibration).
// Images: src/media/image.ts; videos: the one decoder (src/media/video.ts) that `data build` also
// uses, so predict samples and resizes a video's frames exactly as the dataset did. The type
// always comes from the bytes (sniffType); a bad file becomes a BadInputError naming the file.
// A frame can be had at further sizes from the same decoded pixels (the guard's scale).
// DICOM files go through media/dicom_frames.ts, sampled by the same rule as videos.
import { BadInputError } from '../errors.js';
import { describeUnknown, SNIFF_BYTES, sniffType, type SniffedType } from './formats.js';
import { decodeDicomFrames } from './dicom_frames.js';
import { decodeImageRgb } from './image.js';
import type { DecodeLimits } from './limits.js';
import { resizeRgb, type RgbImage } from './resize.js';
import { DEFAULT_SAMPLING } from './sampling.js';
import { sniffFile } from './sniff.js';
import { decodeVideoFrames } from './video.js';

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
  /** The same frame at the further sizes asked for, in their order. */
  also?: RgbImage[];
}

export interface FrameDecodeOptions {
  /** The type already sniffed from the bytes. */
  type?: SniffedType;
  limits?: Partial<DecodeLimits>;
  /** Further [height, width] sizes of every frame (Frame.also). */
  alsoSizes?: [number, number][];
}

function sniffBytes(name: string, bytes: Uint8Array): SniffedType {
  const head = bytes.subarray(0, SNIFF_BYTES);
  const type = sniffType(head);
  if (!type) throw new BadInputError(name, describeUnknown(head));
  return type;
}

/** Decodes an image (bytes or a file) resized to width×height (stretched, as in training). */
export async function decodeImageTo(source: string | Uint8Array, width: number, height: number, options: FrameDecodeOptions = {}): Promise<Frame> {
  const name = typeof source === 'string' ? source : '(image bytes)';
  const type = options.type ?? (typeof source === 'string' ? await sniffFile(source) : sniffBytes(name, source));
  if (type.format === 'dicom') {
    const clip = await decodeDicomTo(typeof source === 'string' ? source : { name, bytes: source }, width, height, { fps: 1, maxFrames: 1 }, options);
    if (clip.kind !== 'image') throw new BadInputError(name, `is a multi-frame DICOM file (${clip.frameCount} frames), not an image`);
    return clip.frames[0]!;
  }
  if (type.kind !== 'image') throw new BadInputError(name, `is a ${type.format} video, not an image`);
  const image = await decodeImageRgb(source, { type, name, ...(options.limits ? { limits: options.limits } : {}) });
  const also = options.alsoSizes?.map(([h, w]) => ({ width: w, height: h, rgb: resizeRgb(image.rgb, image.width, image.height, w, h) }));
  const rgb = resizeRgb(image.rgb, image.width, image.height, width, height);
  return { rgb, width, height, index: 0, time: 0, sourceFrame: 0, ...(also ? { also } : {}) };
}

export interface VideoSampling {
  /** Frames per second sampled (default 3, as in POCOVID-Net and `data build`). */
  fps?: number;
  /** At most this many frames (default 30). */
  maxFrames?: number;
}

/** Samples a video file into frames at width×height (same frames and pixels as `data build --size`). */
export async function decodeVideoTo(file: string, width: number, height: number, sampling: VideoSampling = {}, options: FrameDecodeOptions = {}): Promise<Frame[]> {
  const type = options.type ?? (await sniffFile(file));
  if (type.format === 'dicom') return (await decodeDicomTo(file, width, height, sampling, options)).frames;
  if (type.kind !== 'video' || !type.demuxer) throw new BadInputError(file, `is a ${type.format} image, not a video`);
  const fps = sampling.fps ?? DEFAULT_SAMPLING.fps;
  if (!(fps > 0 && fps <= 60)) throw new BadInputError(file, `fps must be in (0, 60], got ${fps}`);
  const maxFrames = sampling.maxFrames ?? DEFAULT_SAMPLING.maxFrames;
  const { frames } = await decodeVideoFrames(file, { ...options.limits, fps, maxFrames, size: [height, width], type, ...(options.alsoSizes ? { alsoSizes: options.alsoSizes } : {}) });
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
  options: FrameDecodeOptions = {},
): Promise<{ kind: 'image' | 'video'; frameCount: number; frames: Frame[] }> {
  const name = typeof source === 'string' ? source : source.name;
  const fps = sampling.fps ?? DEFAULT_SAMPLING.fps;
  if (!(fps > 0 && fps <= 60)) throw new BadInputError(name, `fps must be in (0, 60], got ${fps}`);
  const maxFrames = sampling.maxFrames ?? DEFAULT_SAMPLING.maxFrames;
  const { info, frames } = await decodeDicomFrames(source, {
    ...options.limits,
    fps,
    maxFrames,
    size: [height, width],
    ...(options.alsoSizes ? { alsoSizes: options.alsoSizes } : {}),
  });
  return { kind: info.frameCount === 1 ? 'image' : 'video', frameCount: info.frameCount, frames };
}
