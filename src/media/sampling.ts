// Which native frames of a video are kept, and the ffmpeg command that decodes them, as pure data:
// `data build`, predict and the server run it with the system ffmpeg (src/media/video.ts), the
// in-browser page with ffmpeg.wasm, so a video gives the same frames everywhere.
//
// The rule is the original POCOVID one: keep every k-th native frame, k = max(1,
// floor(nativeFps / fps)), from the first frame of the range, at most maxFrames. ffmpeg's `fps`
// filter would pick other frames whenever the native rate is not a multiple of `fps`.
import { BadInputError, PocovidError } from '../errors.js';
import { hardenedInputArgs, type DecodeLimits } from './limits.js';
import type { VideoInfo } from './video_info.js';

/** Defaults of `data build`, predict, serve and the page: 3 frames per second, at most 30. */
export const DEFAULT_SAMPLING = { fps: 3, maxFrames: 30 } as const;

/** A square box (top, left, side in native pixels) and optionally a native frame range (crop.json's entries). */
export interface CropSpec {
  top: number;
  left: number;
  size: number;
  /** Native frame range, inclusive; undefined = whole video. */
  frames?: [number, number];
}

export interface SamplingOptions {
  /** Frames per second to keep (every floor(native/fps)-th native frame). */
  fps: number;
  /** At most this many frames. */
  maxFrames: number;
  /** Box (and native frame range) from crop.json. */
  crop?: CropSpec;
  /** Native frame range, inclusive; overrides crop.frames. */
  frameRange?: [number, number];
}

/** k of "every k-th native frame" (the epsilon keeps 30/10 from becoming 2.999… → 2). */
export function samplingStep(nativeFps: number, fps: number): number {
  return Math.max(1, Math.floor(nativeFps / fps + 1e-6));
}

/** Checks fps and maxFrames as a decoder option (the CLI checks them first, as option values). */
export function checkSampling(options: Pick<SamplingOptions, 'fps' | 'maxFrames'>): void {
  if (!(options.fps > 0)) throw new PocovidError(`fps must be positive, got ${options.fps}`);
  if (!(Number.isInteger(options.maxFrames) && options.maxFrames >= 1)) throw new PocovidError(`maxFrames must be a positive integer, got ${options.maxFrames}`);
}

function checkRange(range: [number, number]): void {
  const [first, last] = range;
  if (!(Number.isInteger(first) && Number.isInteger(last) && first >= 0 && last >= first)) {
    throw new PocovidError(`frame range must be two integers 0 <= first <= last, got [${first}, ${last}]`);
  }
}

/** The crop box clamped to the frame; throws when it lies outside. */
function clampCrop(file: string, crop: CropSpec, width: number, height: number): { x: number; y: number; w: number; h: number } {
  if (crop.left >= width || crop.top >= height) {
    throw new BadInputError(file, `crop at top ${crop.top}, left ${crop.left} lies outside the ${width}x${height} frame`);
  }
  return { x: crop.left, y: crop.top, w: Math.min(crop.size, width - crop.left), h: Math.min(crop.size, height - crop.top) };
}

/** How to decode a video: ffmpeg's arguments and what comes out of them. */
export interface DecodePlan {
  /** ffmpeg arguments, `output` last: raw RGB frames of width×height, one after the other. */
  args: string[];
  /** Size of each raw frame (the native size, or the crop's). */
  width: number;
  height: number;
  /** Native frame number of kept frame i: firstFrame + i·step. */
  firstFrame: number;
  step: number;
  /** Native frames per second (time of kept frame i: its native number / fps). */
  fps: number;
}

/**
 * The decode of `input` (a `file:` URL), whose probe said `info`: the container forced, optional
 * crop box and native frame range, every step-th native frame, at most maxFrames, as raw RGB24
 * written to `output` (pipe:1 in Node, a file in ffmpeg.wasm).
 */
export function decodePlan(file: string, input: string, info: VideoInfo, sampling: SamplingOptions, limits: DecodeLimits, output: string): DecodePlan {
  checkSampling(sampling);
  const range = sampling.frameRange ?? sampling.crop?.frames;
  if (range) checkRange(range);
  const step = samplingStep(info.fps, sampling.fps);
  const filters: string[] = [];
  if (range) filters.push(`trim=start_frame=${range[0]}:end_frame=${range[1] + 1}`, 'setpts=PTS-STARTPTS');
  filters.push(`select=not(mod(n\\,${step}))`);
  let width = info.width;
  let height = info.height;
  if (sampling.crop) {
    const box = clampCrop(file, sampling.crop, width, height);
    filters.push(`crop=${box.w}:${box.h}:${box.x}:${box.y}`);
    width = box.w;
    height = box.h;
  }
  // The YUV → RGB conversion with swscale's exact C path: its SIMD paths (Debian's ffmpeg on x86)
  // round otherwise than ffmpeg.wasm (no SIMD) — up to 2 grey levels, 0.8 on average for H.264 —
  // and the page must get the CLI's pixels. With these flags both give the same bytes.
  filters.push('scale=flags=accurate_rnd+full_chroma_int+bitexact', 'format=rgb24');
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-noautorotate', '-threads', '1',
    ...hardenedInputArgs(info.demuxer, limits), '-t', String(limits.maxSeconds), '-i', input,
    '-map', '0:v:0', '-an', '-sn', '-dn', '-vf', filters.join(','),
    // passthrough: no frame duplicated or dropped to make a constant rate out of the selection
    '-vsync', '0', '-frames:v', String(sampling.maxFrames), '-f', 'rawvideo', '-pix_fmt', 'rgb24', output];
  return { args, width, height, firstFrame: range?.[0] ?? 0, step, fps: info.fps };
}
