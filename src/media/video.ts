// Video → RGB frames: the ONE decoder, used by `pocovid data build` and by inference (predict,
// serve, explain), so that a video evaluated at training time and the same video given to
// predict are sampled at the same native frames and resized the same way.
//
// Sampling is the original POCOVID rule: keep every k-th native frame, k = max(1,
// floor(nativeFps / fps)), from the first frame of the range, at most maxFrames. ffmpeg's `fps`
// filter would pick other frames whenever the native rate is not a multiple of `fps`.
import { resolve } from 'node:path';
import { BadInputError, PocovidError } from '../errors.js';
import { resizeRgb } from './resize.js';
import { findFfmpeg, hardenedInputArgs, lastLine, resolveLimits, runTool, type DecodeLimits, type StdoutControl } from './ffmpeg.js';
import { probeVideo, type VideoInfo } from './probe.js';
import type { SniffedType } from './sniff.js';

/** A square box (top, left, side in native pixels) and optionally a native frame range (crop.json's entries). */
export interface CropSpec {
  top: number;
  left: number;
  size: number;
  /** Native frame range, inclusive; undefined = whole video. */
  frames?: [number, number];
}

export interface DecodeOptions extends Partial<DecodeLimits> {
  /** Frames per second to keep (every floor(native/fps)-th native frame). */
  fps: number;
  /** At most this many frames. */
  maxFrames: number;
  /** Box (and native frame range) from crop.json. */
  crop?: CropSpec;
  /** Native frame range, inclusive; overrides crop.frames. */
  frameRange?: [number, number];
  /** Output side, or [height, width] (fit 'fill' with sharp); native (cropped) size when absent. */
  size?: number | [number, number];
  /** The type already sniffed from the bytes (skips reading them again). */
  type?: SniffedType;
}

export interface DecodedFrame {
  /** Index among the kept frames. */
  index: number;
  /** Native frame number within the source. */
  sourceFrame: number;
  /** Seconds from the start of the source (sourceFrame / native fps). */
  time: number;
  width: number;
  height: number;
  /** Interleaved 8-bit RGB, width×height×3. */
  rgb: Uint8Array;
}

/** k of "every k-th native frame" (the epsilon keeps 30/10 from becoming 2.999… → 2). */
export function samplingStep(nativeFps: number, fps: number): number {
  return Math.max(1, Math.floor(nativeFps / fps + 1e-6));
}

/** The crop box clamped to the frame; throws when it lies outside. */
function clampCrop(file: string, crop: CropSpec, width: number, height: number): { x: number; y: number; w: number; h: number } {
  if (crop.left >= width || crop.top >= height) {
    throw new BadInputError(file, `crop at top ${crop.top}, left ${crop.left} lies outside the ${width}x${height} frame`);
  }
  return { x: crop.left, y: crop.top, w: Math.min(crop.size, width - crop.left), h: Math.min(crop.size, height - crop.top) };
}

function checkRange(range: [number, number]): void {
  const [first, last] = range;
  if (!(Number.isInteger(first) && Number.isInteger(last) && first >= 0 && last >= first)) {
    throw new PocovidError(`frame range must be two integers 0 <= first <= last, got [${first}, ${last}]`);
  }
}

/**
 * Decodes a video into RGB frames: the container sniffed from the bytes and forced, optional
 * crop box and native frame range, every k-th native frame (see samplingStep), at most
 * maxFrames, then resized to `size` with sharp. Frames are resized as they arrive, so memory
 * holds a couple of native-size frames, not the whole clip.
 */
export async function decodeVideoFrames(file: string, options: DecodeOptions): Promise<{ info: VideoInfo; frames: DecodedFrame[] }> {
  if (!(options.fps > 0)) throw new PocovidError(`fps must be positive, got ${options.fps}`);
  if (!(Number.isInteger(options.maxFrames) && options.maxFrames >= 1)) throw new PocovidError(`maxFrames must be a positive integer, got ${options.maxFrames}`);
  const range = options.frameRange ?? options.crop?.frames;
  if (range) checkRange(range);
  const limits = resolveLimits(options);
  const info = await probeVideo(file, limits, options.type);
  const step = samplingStep(info.fps, options.fps);

  const filters: string[] = [];
  if (range) filters.push(`trim=start_frame=${range[0]}:end_frame=${range[1] + 1}`, 'setpts=PTS-STARTPTS');
  filters.push(`select=not(mod(n\\,${step}))`);
  let width = info.width;
  let height = info.height;
  if (options.crop) {
    const box = clampCrop(file, options.crop, width, height);
    filters.push(`crop=${box.w}:${box.h}:${box.x}:${box.y}`);
    width = box.w;
    height = box.h;
  }
  filters.push('format=rgb24');
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-noautorotate', '-threads', '1',
    ...hardenedInputArgs(info.demuxer, limits), '-t', String(limits.maxSeconds), '-i', `file:${resolve(file)}`,
    '-map', '0:v:0', '-an', '-sn', '-dn', '-vf', filters.join(','),
    // passthrough: no frame duplicated or dropped to make a constant rate out of the selection
    '-vsync', '0', '-frames:v', String(options.maxFrames), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];

  const frameBytes = width * height * 3;
  const firstFrame = range?.[0] ?? 0;
  const frames: DecodedFrame[] = [];
  const jobs: Promise<void>[] = [];
  let resizeError: Error | undefined;
  let inFlight = 0;
  const finish = async (raw: Uint8Array, index: number, control: StdoutControl) => {
    try {
      const rgb = options.size === undefined ? raw : await resizeRgb(raw, width, height, options.size);
      const [outH, outW] = options.size === undefined ? [height, width] : typeof options.size === 'number' ? [options.size, options.size] : options.size;
      const sourceFrame = firstFrame + index * step;
      frames[index] = { index, sourceFrame, time: sourceFrame / info.fps, width: outW, height: outH, rgb };
    } catch (err) {
      resizeError ??= new BadInputError(file, `cannot resize frame ${index} (${(err as Error).message})`, { cause: err });
      control.abort(resizeError);
    } finally {
      // Back-pressure: ffmpeg waits on a full pipe while sharp catches up.
      if (--inFlight < 2) control.stdout.resume();
    }
  };
  let pending = new Uint8Array(frameBytes);
  let filled = 0;
  let count = 0;
  const onStdout = (chunk: Buffer, control: StdoutControl) => {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(frameBytes - filled, chunk.length - offset);
      pending.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === frameBytes) {
        if (++inFlight >= 2) control.stdout.pause();
        jobs.push(finish(pending, count++, control));
        pending = new Uint8Array(frameBytes);
        filled = 0;
      }
    }
  };
  const maxBytes = Math.min(limits.maxBytes, frameBytes * options.maxFrames);
  const run = runTool({ binary: findFfmpeg().ffmpeg, args, file, timeoutMs: limits.timeoutMs, maxBytes, maxMemoryBytes: limits.maxMemoryBytes, onStdout });
  // Every frame's resize settles before we answer, failed run or not (jobs never reject).
  const out = await run.finally(() => Promise.all(jobs));
  if (resizeError) throw resizeError;
  if (out.code !== 0 && count === 0) throw new BadInputError(file, `cannot decode (${lastLine(out.stderr) || `ffmpeg exit ${out.code}`})`);
  if (count === 0) throw new BadInputError(file, `no frames decoded${out.stderr ? ` (${lastLine(out.stderr)})` : ''}`);
  return { info, frames };
}
