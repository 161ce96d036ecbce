// Size, native frame rate and duration of a video whose demuxer was already chosen from its bytes.
// The probe runs with the same hardening as the decode (forced + whitelisted demuxer, file
// protocol only, limits): ffprobe when it exists, else the banner of `ffmpeg -i` (the bundled
// ffmpeg 4 has no ffprobe).
import { BadInputError } from '../errors.js';
import { findFfmpeg, hardenedInputArgs, lastLine, resolveLimits, runTool, type DecodeLimits } from './ffmpeg.js';
import { describeUnknown, readHead, sniffType, type SniffedType } from './sniff.js';

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
const MAX_SIDE = 8192;
/** Probe output is a few hundred bytes of JSON; anything bigger is not a probe answer. */
const PROBE_MAX_BYTES = 1 << 20;

function parseRate(rate: string | undefined): number {
  if (!rate) return NaN;
  const [num, den] = rate.split('/').map(Number);
  if (den === undefined) return num ?? NaN;
  return den ? num! / den : NaN;
}

function checkedInfo(file: string, demuxer: string, info: Omit<VideoInfo, 'demuxer'>, limits: DecodeLimits, stderr: string): VideoInfo {
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

/** Probes a video with its demuxer forced; BadInputError when ffmpeg cannot read it as that. */
export async function probeWithDemuxer(file: string, demuxer: string, limits: DecodeLimits): Promise<VideoInfo> {
  const tools = findFfmpeg();
  const input = [...hardenedInputArgs(demuxer, limits), '-i', `file:${file}`];
  const run = { file, timeoutMs: limits.timeoutMs, maxBytes: PROBE_MAX_BYTES, maxMemoryBytes: limits.maxMemoryBytes };
  const unreadable = (stderr: string, code: number | null) =>
    new BadInputError(file, `not a readable video: cannot decode it as ${demuxer} (${lastLine(stderr) || `exit code ${code}`})`);
  if (tools.ffprobe) {
    const args = ['-v', 'error', ...input, '-select_streams', 'v:0',
      '-show_entries', 'format=format_name,duration:stream=width,height,avg_frame_rate,r_frame_rate', '-of', 'json'];
    const out = await runTool({ ...run, binary: tools.ffprobe, args });
    if (out.code !== 0) throw unreadable(out.stderr, out.code);
    let json: { streams?: { width?: number; height?: number; avg_frame_rate?: string; r_frame_rate?: string }[]; format?: { format_name?: string; duration?: string } };
    try {
      json = JSON.parse(out.stdout.toString('utf8'));
    } catch {
      throw unreadable(out.stderr, out.code);
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
    }, limits, out.stderr);
  }
  // No ffprobe: `ffmpeg -i` prints the same facts on stderr before failing for want of an output.
  const out = await runTool({ ...run, binary: tools.ffmpeg, args: ['-hide_banner', '-nostdin', ...input] });
  if (!/Input #0, /.test(out.stderr)) throw unreadable(out.stderr, out.code);
  return checkedInfo(file, demuxer, parseFfmpegBanner(file, out.stderr), limits, out.stderr);
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

/**
 * Sniffs a file that should be a video (the decoder's own messages: "empty file", "not a
 * readable video (...)"); images that only ffmpeg decodes (BMP) pass too, with their demuxer.
 */
export async function sniffVideo(file: string): Promise<SniffedType> {
  const head = await readHead(file);
  if (head.length === 0) throw new BadInputError(file, 'empty file');
  const type = sniffType(head);
  if (!type) throw new BadInputError(file, `not a readable video (${describeUnknown(head)})`);
  return type;
}

/** Sniffs (unless `type` is given), then probes with the sniffed demuxer forced. */
export async function probeVideo(file: string, limits: Partial<DecodeLimits> = {}, type?: SniffedType): Promise<VideoInfo> {
  const resolved = resolveLimits(limits);
  const sniffed = type ?? (await sniffVideo(file));
  if (!sniffed.demuxer) throw new BadInputError(file, `is a ${sniffed.format} image, not a video`);
  return probeWithDemuxer(file, sniffed.demuxer, resolved);
}
