// H.264 re-encoding of a frame sequence, as happens when a clip is exported, shared or screen
// recorded: the frames are written as an H.264 (x264) MP4 by ffmpeg and read back through the one
// hardened decoder (src/media/video.ts), under the same limits as any other input.
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { PocovidError } from '../errors.js';
import { findFfmpeg, runTool } from './ffmpeg.js';
import { lastLine } from './video_info.js';
import { decodeVideoFrames } from './video.js';

export interface H264Options {
  /** x264 constant rate factor: 23 is ffmpeg's default, lower is better quality. */
  crf?: number;
  /** x264 speed/quality preset (ffmpeg's default "medium"). */
  preset?: string;
}

/** What the re-encoding used, for a run's recorded config. */
export const H264_DEFAULTS = { codec: 'libx264', crf: 23, preset: 'medium', pixelFormat: 'yuv420p', threads: 1 } as const;

export interface RgbSequenceFrame {
  width: number;
  height: number;
  rgb: Uint8Array;
}

/** Copies a frame into an even-sized one (yuv420p needs even sides), repeating the last row/column. */
function padToEven(frame: RgbSequenceFrame, width: number, height: number): Uint8Array {
  if (frame.width === width && frame.height === height) return frame.rgb;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(y, frame.height - 1);
    for (let x = 0; x < width; x++) {
      const s = (sy * frame.width + Math.min(x, frame.width - 1)) * 3;
      out.set(frame.rgb.subarray(s, s + 3), (y * width + x) * 3);
    }
  }
  return out;
}

function cropTo(rgb: Uint8Array, fromWidth: number, width: number, height: number): Uint8Array {
  if (fromWidth === width && rgb.length === width * height * 3) return rgb;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) out.set(rgb.subarray(y * fromWidth * 3, (y * fromWidth + width) * 3), y * width * 3);
  return out;
}

/**
 * Writes the frames (one size, in order) to `file` as an H.264 MP4 at `fps`: x264 single-threaded,
 * so the bytes do not depend on the machine's cores; odd sides are padded by repeating the edge.
 * Written under a temporary name and renamed when complete.
 */
export async function encodeH264Clip(file: string, frames: readonly RgbSequenceFrame[], fps: number, options: H264Options = {}): Promise<void> {
  if (frames.length === 0) throw new PocovidError('H.264 encoding needs at least one frame');
  const { width, height } = frames[0]!;
  if (frames.some((f) => f.width !== width || f.height !== height || f.rgb.length !== width * height * 3)) {
    throw new PocovidError('H.264 encoding needs frames of one size');
  }
  if (!(fps > 0)) throw new PocovidError(`fps must be positive, got ${fps}`);
  const evenW = width + (width % 2);
  const evenH = height + (height % 2);
  const input = Buffer.concat(frames.map((f) => padToEven(f, evenW, evenH)));
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${evenW}x${evenH}`,
    '-r', String(fps), '-i', 'pipe:0', '-c:v', H264_DEFAULTS.codec, '-preset', options.preset ?? H264_DEFAULTS.preset,
    '-crf', String(options.crf ?? H264_DEFAULTS.crf), '-pix_fmt', H264_DEFAULTS.pixelFormat, '-threads', String(H264_DEFAULTS.threads), '-f', 'mp4', tmp];
  const ffmpeg = findFfmpeg();
  try {
    const out = await runTool({ binary: ffmpeg.ffmpeg, args, file, timeoutMs: 120_000, maxBytes: 1 << 20, stdin: input });
    if (out.code !== 0) {
      const reason = lastLine(out.stderr);
      if (/Unknown encoder|Encoder not found|libx264/i.test(reason)) {
        throw new PocovidError(`${ffmpeg.ffmpeg} (ffmpeg ${ffmpeg.version}) has no H.264 encoder (libx264): ${reason}`);
      }
      throw new PocovidError(`ffmpeg could not encode H.264: ${reason || `exit ${out.code}`}`);
    }
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * The frames (one size, in order) encoded as one H.264 clip at `fps` (encodeH264Clip) and decoded
 * again by the hardened decoder: the same number of frames comes back, each at its input size.
 */
export async function h264RoundTrip(frames: readonly RgbSequenceFrame[], fps: number, options: H264Options = {}): Promise<Uint8Array[]> {
  if (frames.length === 0) return [];
  const { width, height } = frames[0]!;
  const dir = await mkdtemp(join(tmpdir(), 'pocovid-h264-'));
  try {
    const file = join(dir, 'clip.mp4');
    await encodeH264Clip(file, frames, fps, options);
    // Every frame back: sampled at the clip's own rate, so the decoder keeps each one.
    const decoded = await decodeVideoFrames(file, { fps, maxFrames: frames.length });
    if (decoded.frames.length !== frames.length) {
      throw new PocovidError(`H.264 round trip returned ${decoded.frames.length} of ${frames.length} frames`);
    }
    return decoded.frames.map((f) => cropTo(f.rgb, f.width, width, height));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
