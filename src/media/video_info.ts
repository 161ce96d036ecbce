// What ffprobe (or `ffmpeg -i`) says about a video, as pure data: the probe's command line and the
// parsing of its answer into size, native frame rate and duration. Node (src/media/probe.ts) and
// the in-browser page (ffmpeg.wasm) run the same command and read the answer the same way, so they
// agree on the native frame rate and hence on which frames are sampled.
import { BadInputError } from '../errors.js';
import { hardenedInputArgs, type DecodeLimits } from './limits.js';

export interface VideoInfo {
  /** Container format as ffmpeg names it (e.g. "mov,mp4,m4a,3gp,3g2,mj2"). */
  format: string;
  /** The demuxer forced with -f (from the sniffed bytes). */
  demuxer: string;
  width: number;
  height: number;
  /** Native frames per second (25 when the file does not say). */
  fps: number;
  /** Seconds, when known. */
  duration: number | undefined;
}

/** Longest side we accept, whatever maxPixels says. */
export const MAX_SIDE = 8192;

/** The last non-empty line of ffmpeg's stderr: usually the reason it failed. */
export function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}

function parseRate(rate: string | undefined): number {
  if (!rate) return NaN;
  const [num, den] = rate.split('/').map(Number);
  if (den === undefined) return num ?? NaN;
  return den ? num! / den : NaN;
}

/** Size checked against the limits; a missing or absurd frame rate becomes 25. */
export function checkedInfo(file: string, demuxer: string, probed: Omit<VideoInfo, 'demuxer'>, limits: DecodeLimits, stderr: string): VideoInfo {
  let info = probed;
  // -max_pixels makes the decoder refuse a big picture before the probe learns its size; ffmpeg
  // names the size in its message, and the answer must be "over the limit", not "no video".
  const refused = /Picture size (\d+)x(\d+) exceeds specified max pixel count/.exec(stderr);
  if (!(info.width > 0 && info.height > 0) && refused) info = { ...info, width: Number(refused[1]), height: Number(refused[2]) };
  if (!(info.width > 0 && info.height > 0)) {
    const why = lastLine(stderr);
    throw new BadInputError(file, `not a readable video: no video stream${why ? ` (${why})` : ''}`);
  }
  if (info.width > MAX_SIDE || info.height > MAX_SIDE || info.width * info.height > limits.maxPixels) {
    throw new BadInputError(file, `frame size ${info.width}x${info.height} is over the limit (${MAX_SIDE} a side, ${limits.maxPixels} pixels)`);
  }
  const fps = Number.isFinite(info.fps) && info.fps > 0 && info.fps < 1000 ? info.fps : 25;
  return { ...info, fps, demuxer };
}

/** ffprobe's arguments for `input` (a `file:` URL) with its demuxer forced: one JSON answer. */
export function ffprobeArgs(input: string, demuxer: string, limits: DecodeLimits): string[] {
  return ['-v', 'error', ...hardenedInputArgs(demuxer, limits), '-i', input, '-select_streams', 'v:0',
    '-show_entries', 'format=format_name,duration:stream=width,height,avg_frame_rate,r_frame_rate', '-of', 'json'];
}

/** `ffmpeg -i` without an output: it prints the input's facts on stderr (for an ffmpeg without ffprobe). */
export function bannerArgs(input: string, demuxer: string, limits: DecodeLimits): string[] {
  return ['-hide_banner', '-nostdin', ...hardenedInputArgs(demuxer, limits), '-i', input];
}

interface ProbeJson {
  streams?: { width?: number; height?: number; avg_frame_rate?: string; r_frame_rate?: string }[];
  format?: { format_name?: string; duration?: string };
}

/** ffprobe's JSON answer → VideoInfo (undefined when the text is not a probe answer). */
export function parseProbeJson(file: string, demuxer: string, text: string, limits: DecodeLimits, stderr = ''): VideoInfo | undefined {
  let json: ProbeJson;
  try {
    json = JSON.parse(text) as ProbeJson;
  } catch {
    return undefined;
  }
  const stream = json.streams?.[0] ?? {};
  const avg = parseRate(stream.avg_frame_rate);
  const duration = Number(json.format?.duration);
  return checkedInfo(file, demuxer, {
    format: json.format?.format_name ?? demuxer,
    width: stream.width ?? 0,
    height: stream.height ?? 0,
    fps: Number.isFinite(avg) && avg > 0 ? avg : parseRate(stream.r_frame_rate),
    duration: Number.isFinite(duration) ? duration : undefined,
  }, limits, stderr);
}

/** Parses `Input #0, <format>, from …`, `Duration: hh:mm:ss.cc` and the first `Video:` stream line. */
export function parseFfmpegBanner(file: string, stderr: string): Omit<VideoInfo, 'demuxer'> {
  const format = /Input #0, (.+?), from /.exec(stderr)?.[1];
  if (!format) throw new BadInputError(file, `not a readable video (${lastLine(stderr) || 'no input format recognised'})`);
  const video = /Stream #0:\d+.*?: Video: (.*)/.exec(stderr)?.[1];
  if (!video) throw new BadInputError(file, 'not a readable video: no video stream');
  const size = /(?:^|[ ,])(\d{1,5})x(\d{1,5})(?:[ ,[]|$)/.exec(video);
  // ffmpeg prints avg_frame_rate as "fps" and r_frame_rate as "tbr" (ffprobe's avg, then r).
  const fps = /([\d.]+k?) fps/.exec(video)?.[1] ?? /([\d.]+k?) tbr/.exec(video)?.[1];
  const dur = /Duration: (\d+):(\d+):([\d.]+)/.exec(stderr);
  return {
    format,
    width: size ? Number(size[1]) : 0,
    height: size ? Number(size[2]) : 0,
    fps: fps ? (fps.endsWith('k') ? Number(fps.slice(0, -1)) * 1000 : Number(fps)) : NaN,
    duration: dur ? Number(dur[1]) * 3600 + Number(dur[2]) * 60 + Number(dur[3]) : undefined,
  };
}

/** The banner of `ffmpeg -i` → VideoInfo; BadInputError when ffmpeg did not recognise the input. */
export function parseBanner(file: string, demuxer: string, stderr: string, limits: DecodeLimits): VideoInfo {
  return checkedInfo(file, demuxer, parseFfmpegBanner(file, stderr), limits, stderr);
}
