// Video → RGB frames: the ONE decoder in Node, used by `pocovid data build` and by inference
// (predict, serve, explain), so that a video evaluated at training time and the same video given
// to predict are sampled at the same native frames and resized the same way. Which frames, and
// the ffmpeg command, come from src/media/sampling.ts (the page runs the same command with
// ffmpeg.wasm); the resize is src/media/resize.ts.
import { resolve } from 'node:path';
import { BadInputError } from '../errors.js';
import { findFfmpeg, runTool, type StdoutControl } from './ffmpeg.js';
import { resolveLimits, type DecodeLimits } from './limits.js';
import { probeVideo } from './probe.js';
import { resizeRgb, type RgbImage } from './resize.js';
import { checkSampling, decodePlan, type SamplingOptions } from './sampling.js';
import type { SniffedType } from './formats.js';
import { lastLine, type VideoInfo } from './video_info.js';

export interface DecodeOptions extends SamplingOptions, Partial<DecodeLimits> {
  /** Output side, or [height, width] (fit 'fill'); native (cropped) size when absent. */
  size?: number | [number, number];
  /** Further sizes each frame is also resized to (DecodedFrame.also), from the same decoded pixels. */
  alsoSizes?: [number, number][];
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
  /** The same frame at DecodeOptions.alsoSizes, in that order. */
  also?: RgbImage[];
}

/**
 * Decodes a video into RGB frames (see src/media/sampling.ts for which), each resized to `size`
 * (and `alsoSizes`) as it arrives, so memory holds one native-size frame, not the whole clip.
 */
export async function decodeVideoFrames(file: string, options: DecodeOptions): Promise<{ info: VideoInfo; frames: DecodedFrame[] }> {
  checkSampling(options);
  const limits = resolveLimits(options);
  const info = await probeVideo(file, limits, options.type);
  const plan = decodePlan(file, `file:${resolve(file)}`, info, options, limits, 'pipe:1');
  const { width, height } = plan;
  const [outH, outW] = options.size === undefined ? [height, width] : typeof options.size === 'number' ? [options.size, options.size] : options.size;

  const frameBytes = width * height * 3;
  const frames: DecodedFrame[] = [];
  let resizeError: Error | undefined;
  const finish = (raw: Uint8Array, index: number, control: StdoutControl) => {
    try {
      const rgb = options.size === undefined ? raw : resizeRgb(raw, width, height, outW, outH);
      const sourceFrame = plan.firstFrame + index * plan.step;
      const also = options.alsoSizes?.map(([h, w]) => ({ width: w, height: h, rgb: resizeRgb(raw, width, height, w, h) }));
      frames[index] = { index, sourceFrame, time: sourceFrame / plan.fps, width: outW, height: outH, rgb, ...(also ? { also } : {}) };
    } catch (err) {
      resizeError ??= new BadInputError(file, `cannot resize frame ${index} (${(err as Error).message})`, { cause: err });
      control.abort(resizeError);
    }
  };
  let pending = new Uint8Array(frameBytes);
  let filled = 0;
  let count = 0;
  // The resize runs synchronously as each frame completes; ffmpeg waits on the full pipe meanwhile.
  const onStdout = (chunk: Buffer, control: StdoutControl) => {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(frameBytes - filled, chunk.length - offset);
      pending.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === frameBytes) {
        finish(pending, count++, control);
        pending = new Uint8Array(frameBytes);
        filled = 0;
      }
    }
  };
  const maxBytes = Math.min(limits.maxBytes, frameBytes * options.maxFrames);
  const out = await runTool({ binary: findFfmpeg().ffmpeg, args: plan.args, file, timeoutMs: limits.timeoutMs, maxBytes, maxMemoryBytes: limits.maxMemoryBytes, onStdout });
  if (resizeError) throw resizeError;
  if (out.code !== 0 && count === 0) throw new BadInputError(file, `cannot decode (${lastLine(out.stderr) || `ffmpeg exit ${out.code}`})`);
  if (count === 0) throw new BadInputError(file, `no frames decoded${out.stderr ? ` (${lastLine(out.stderr)})` : ''}`);
  return { info, frames };
}
