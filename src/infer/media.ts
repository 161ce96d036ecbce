// Files → RGB frames at the model's input size. Images through sharp (BMP through ffmpeg, which
// sharp cannot read), videos through the hardened ffmpeg wrapper. The type always comes from the
// bytes (sniffType); a bad file becomes a BadInputError naming the file and the problem.
import { open, readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { BadInputError } from '../errors.js';
import { decodeRawFrames, type DecodeLimits } from './ffmpeg.js';
import { describeUnknown, sniffType, SNIFF_BYTES, type SniffedType } from './sniff.js';

export interface Frame {
  /** Interleaved RGB, width×height×3. */
  rgb: Uint8Array;
  width: number;
  height: number;
  index: number;
  /** Seconds from the start (0 for images). */
  time: number;
}

/** Reads the head of a file and sniffs its type, or throws BadInputError. */
export async function sniffFile(file: string): Promise<SniffedType> {
  let head: Uint8Array;
  try {
    const handle = await open(file, 'r');
    try {
      const buffer = new Uint8Array(SNIFF_BYTES);
      const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new BadInputError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const type = sniffType(head);
  if (!type) throw new BadInputError(file, describeUnknown(head));
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
  const bytes = typeof source === 'string' ? new Uint8Array(await readFile(source)) : source;
  const sniffed = type ?? sniffType(bytes.subarray(0, SNIFF_BYTES));
  if (!sniffed) throw new BadInputError(name, describeUnknown(bytes.subarray(0, SNIFF_BYTES)));
  if (sniffed.kind !== 'image') throw new BadInputError(name, `is a ${sniffed.format} video, not an image`);
  if (sniffed.format === 'bmp') {
    if (typeof source !== 'string') throw new BadInputError(name, 'BMP is decoded from a file only');
    const [rgb] = await decodeRawFrames({ file: source, demuxer: 'bmp_pipe', width, height, maxFrames: 1, limits }).catch((err: Error) => {
      throw new BadInputError(name, err.message);
    });
    return { rgb: rgb!, width, height, index: 0, time: 0 };
  }
  try {
    const { data } = await sharp(bytes, { limitInputPixels: 8192 * 8192, failOn: 'error' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (data.length !== width * height * 3) throw new Error(`unexpected decoded size ${data.length}`);
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height, index: 0, time: 0 };
  } catch (err) {
    throw new BadInputError(name, `cannot decode ${sniffed.format} image (${(err as Error).message})`);
  }
}

export interface VideoSampling {
  /** Frames per second sampled (default 3, as in POCOVID-Net). */
  fps?: number;
  /** At most this many frames (default 30). */
  maxFrames?: number;
  limits?: Partial<DecodeLimits>;
}

/** Samples a video file into frames at width×height. */
export async function decodeVideoTo(file: string, width: number, height: number, sampling: VideoSampling = {}, type?: SniffedType): Promise<Frame[]> {
  const sniffed = type ?? (await sniffFile(file));
  if (sniffed.kind !== 'video' || !sniffed.demuxer) throw new BadInputError(file, `is a ${sniffed.format} image, not a video`);
  const fps = sampling.fps ?? 3;
  if (!(fps > 0 && fps <= 60)) throw new BadInputError(file, `fps must be in (0, 60], got ${fps}`);
  const maxFrames = sampling.maxFrames ?? 30;
  let frames: Uint8Array[];
  try {
    frames = await decodeRawFrames({ file, demuxer: sniffed.demuxer, width, height, fps, maxFrames, limits: sampling.limits });
  } catch (err) {
    throw new BadInputError(file, (err as Error).message);
  }
  return frames.map((rgb, index) => ({ rgb, width, height, index, time: index / fps }));
}
