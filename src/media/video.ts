// ffmpeg as a library: locate the binary, probe a video, decode frames through a raw-RGB pipe.
// Decoding is safe by default because the server reuses it for untrusted uploads: only the
// `file` protocol, a demuxer from an allow-list chosen from the probed format, a time limit,
// and a cap on the bytes read back.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, delimiter, dirname, join } from 'node:path';
import { BadInputError, PocovidError } from '../errors.js';
import type { CropSpec } from './crop.js';
import { resizeRgb } from './image.js';

export interface FfmpegTools {
  ffmpeg: string;
  /** ffprobe exists next to the system ffmpeg; the bundled build has none (we parse ffmpeg's banner). */
  ffprobe: string | undefined;
  origin: 'system' | 'bundled';
  version: string;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function versionOf(binary: string): string {
  const out = spawnSync(binary, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000 });
  return /version (\S+)/.exec(out.stdout ?? '')?.[1] ?? 'unknown';
}

let cached: FfmpegTools | undefined;

/** The system ffmpeg when on PATH, else the static binary of @ffmpeg-installer/ffmpeg. */
export function findFfmpeg(): FfmpegTools {
  if (cached) return cached;
  const system = onPath('ffmpeg');
  if (system) {
    cached = { ffmpeg: system, ffprobe: onPath('ffprobe'), origin: 'system', version: versionOf(system) };
    return cached;
  }
  try {
    const require = createRequire(import.meta.url);
    const bundled = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
    cached = { ffmpeg: bundled, ffprobe: undefined, origin: 'bundled', version: versionOf(bundled) };
    return cached;
  } catch (err) {
    throw new PocovidError('ffmpeg not found: install it (e.g. apt-get install ffmpeg) or the npm package @ffmpeg-installer/ffmpeg', { cause: err });
  }
}

/** For tests: forget the located binaries (e.g. after changing PATH). */
export function resetFfmpegCache(): void {
  cached = undefined;
}

interface RunResult {
  stdout: Buffer;
  stderr: string;
  code: number | null;
}

/** Runs a binary with a wall-clock limit and a cap on stdout; the child is killed when either is hit. */
function run(binary: string, args: string[], file: string, limits: { timeoutMs: number; maxBytes: number }, stdin?: Uint8Array): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let stderr = '';
    let failure: Error | undefined;
    const timer = setTimeout(() => {
      failure = new BadInputError(file, `decoding took longer than ${limits.timeoutMs} ms (limit)`);
      child.kill('SIGKILL');
    }, limits.timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limits.maxBytes) {
        failure ??= new BadInputError(file, `decoded output exceeds ${limits.maxBytes} bytes (limit)`);
        child.kill('SIGKILL');
        return;
      }
      chunks.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-20_000);
    });
    if (stdin) {
      child.stdin!.on('error', () => undefined); // ffmpeg may exit before reading everything
      child.stdin!.end(stdin);
    }
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new PocovidError(`cannot run ${binary}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (failure) reject(failure);
      else resolve({ stdout: Buffer.concat(chunks), stderr, code });
    });
  });
}

/** Demuxers we let ffmpeg use, keyed by the first name of the probed format. */
const DEMUXER_BY_FORMAT: Record<string, string> = {
  mov: 'mov',
  mp4: 'mov',
  avi: 'avi',
  gif: 'gif',
  mpeg: 'mpeg',
  mpegts: 'mpegts',
  mpegvideo: 'mpegvideo',
  matroska: 'matroska',
  webm: 'matroska',
};
export const ALLOWED_FORMATS: readonly string[] = Object.keys(DEMUXER_BY_FORMAT);

export interface VideoInfo {
  /** Container format as probed (e.g. "mov,mp4,m4a,3gp,3g2,mj2"). */
  format: string;
  /** The demuxer passed to ffmpeg with -f. */
  demuxer: string;
  width: number;
  height: number;
  /** Native frames per second. */
  fps: number;
  /** Seconds, when known. */
  duration: number | undefined;
}

export interface LimitOptions {
  /** Wall-clock limit for each ffmpeg run (default 60 s). */
  timeoutMs?: number;
  /** Cap on the raw RGB bytes decoded (default 1 GiB). */
  maxBytes?: number;
}

const MAX_SIDE = 8192;

function parseRate(rate: string | undefined): number {
  if (!rate) return NaN;
  const [num, den] = rate.split('/').map(Number);
  if (den === undefined) return num ?? NaN;
  return den ? num! / den : NaN;
}

function demuxerFor(file: string, format: string): string {
  for (const name of format.split(',')) {
    const demuxer = DEMUXER_BY_FORMAT[name.trim()];
    if (demuxer) return demuxer;
  }
  throw new BadInputError(file, `container format "${format}" is not allowed (allowed: ${ALLOWED_FORMATS.join(', ')})`);
}

function checkedInfo(file: string, info: Omit<VideoInfo, 'demuxer'>): VideoInfo {
  if (!(info.width > 0 && info.height > 0)) throw new BadInputError(file, 'no video stream');
  if (info.width > MAX_SIDE || info.height > MAX_SIDE) {
    throw new BadInputError(file, `frame size ${info.width}x${info.height} is larger than ${MAX_SIDE} pixels a side`);
  }
  const fps = Number.isFinite(info.fps) && info.fps > 0 && info.fps < 1000 ? info.fps : 25;
  return { ...info, fps, demuxer: demuxerFor(file, info.format) };
}

/** Container, size, frame rate and duration of a video file. */
export async function probeVideo(file: string, limits: LimitOptions = {}): Promise<VideoInfo> {
  const tools = findFfmpeg();
  const runLimits = { timeoutMs: limits.timeoutMs ?? 30_000, maxBytes: 1 << 20 };
  if (tools.ffprobe) {
    const args = ['-v', 'error', '-protocol_whitelist', 'file', '-select_streams', 'v:0',
      '-show_entries', 'format=format_name,duration:stream=width,height,avg_frame_rate,r_frame_rate', '-of', 'json', `file:${file}`];
    const out = await run(tools.ffprobe, args, file, runLimits);
    if (out.code !== 0) throw new BadInputError(file, `not a readable video (${lastLine(out.stderr) || `ffprobe exit ${out.code}`})`);
    const json = JSON.parse(out.stdout.toString('utf8')) as {
      streams?: { width?: number; height?: number; avg_frame_rate?: string; r_frame_rate?: string }[];
      format?: { format_name?: string; duration?: string };
    };
    const stream = json.streams?.[0] ?? {};
    const avg = parseRate(stream.avg_frame_rate);
    const fps = Number.isFinite(avg) && avg > 0 ? avg : parseRate(stream.r_frame_rate);
    const duration = Number(json.format?.duration);
    return checkedInfo(file, {
      format: json.format?.format_name ?? 'unknown',
      width: stream.width ?? 0,
      height: stream.height ?? 0,
      fps,
      duration: Number.isFinite(duration) ? duration : undefined,
    });
  }
  // No ffprobe: `ffmpeg -i` prints the same facts on stderr before failing for want of an output.
  const out = await run(tools.ffmpeg, ['-hide_banner', '-nostdin', '-protocol_whitelist', 'file', '-i', `file:${file}`], file, runLimits);
  return checkedInfo(file, parseFfmpegBanner(file, out.stderr));
}

/** Parses `Input #0, <format>, from …`, `Duration: hh:mm:ss.cc` and the first `Video:` stream line. */
export function parseFfmpegBanner(file: string, stderr: string): Omit<VideoInfo, 'demuxer'> {
  const format = /Input #0, (.+?), from /.exec(stderr)?.[1];
  if (!format) throw new BadInputError(file, `not a readable video (${lastLine(stderr) || 'no input format recognised'})`);
  const video = /Stream #0:\d+.*?: Video: (.*)/.exec(stderr)?.[1];
  if (!video) throw new BadInputError(file, 'no video stream');
  const size = /(?:^|[ ,])(\d{2,5})x(\d{2,5})(?:[ ,\[]|$)/.exec(video);
  const fps = /([\d.]+) fps/.exec(video)?.[1] ?? /([\d.]+) tbr/.exec(video)?.[1];
  const dur = /Duration: (\d+):(\d+):([\d.]+)/.exec(stderr);
  return {
    format,
    width: size ? Number(size[1]) : 0,
    height: size ? Number(size[2]) : 0,
    fps: fps ? Number(fps) : NaN,
    duration: dur ? Number(dur[1]) * 3600 + Number(dur[2]) * 60 + Number(dur[3]) : undefined,
  };
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}

export interface DecodeOptions extends LimitOptions {
  /** Frames per second to keep (every floor(native/fps)-th frame, as the original protocol). */
  fps: number;
  /** At most this many frames. */
  maxFrames: number;
  crop?: CropSpec;
  /** Output side (square, fit 'fill'); native (cropped) size when absent. */
  size?: number;
}

export interface DecodedFrame {
  /** Index among the kept frames. */
  index: number;
  /** Native frame number within the source. */
  sourceFrame: number;
  /** Seconds from the start of the source. */
  time: number;
  width: number;
  height: number;
  /** Interleaved 8-bit RGB, width×height×3. */
  rgb: Uint8Array;
}

/** The crop box clamped to the frame; throws when it lies outside. */
function clampCrop(file: string, crop: CropSpec, width: number, height: number): { x: number; y: number; w: number; h: number } {
  if (crop.left >= width || crop.top >= height) {
    throw new BadInputError(file, `crop at top ${crop.top}, left ${crop.left} lies outside the ${width}x${height} frame`);
  }
  return { x: crop.left, y: crop.top, w: Math.min(crop.size, width - crop.left), h: Math.min(crop.size, height - crop.top) };
}

/**
 * Decodes a video into RGB frames: optional crop (box and native frame range from crop.json),
 * every k-th native frame with k = max(1, floor(nativeFps / fps)) as the original POCOVID
 * protocol did, at most maxFrames, then resized to size×size with sharp.
 */
export async function decodeVideoFrames(file: string, options: DecodeOptions): Promise<{ info: VideoInfo; frames: DecodedFrame[] }> {
  if (!(options.fps > 0)) throw new PocovidError(`fps must be positive, got ${options.fps}`);
  if (!(options.maxFrames >= 1)) throw new PocovidError(`maxFrames must be at least 1, got ${options.maxFrames}`);
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw new BadInputError(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  if (size === 0) throw new BadInputError(file, 'empty file');
  const info = await probeVideo(file, options);
  const step = Math.max(1, Math.floor(info.fps / options.fps + 1e-6));
  const filters: string[] = [];
  let firstFrame = 0;
  if (options.crop?.frames) {
    const [first, last] = options.crop.frames;
    firstFrame = first;
    filters.push(`trim=start_frame=${first}:end_frame=${last + 1}`, 'setpts=PTS-STARTPTS');
  }
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
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-noautorotate', '-protocol_whitelist', 'file',
    '-f', info.demuxer, '-i', `file:${file}`, '-map', '0:v:0', '-an', '-sn', '-dn', '-vf', filters.join(','),
    '-vsync', '0', '-frames:v', String(Math.floor(options.maxFrames)), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
  const frameBytes = width * height * 3;
  const maxBytes = Math.min(options.maxBytes ?? 1 << 30, frameBytes * Math.floor(options.maxFrames));
  const out = await run(findFfmpeg().ffmpeg, args, file, { timeoutMs: options.timeoutMs ?? 60_000, maxBytes: maxBytes + 1 });
  if (out.code !== 0 && out.stdout.length === 0) {
    throw new BadInputError(file, `cannot decode (${lastLine(out.stderr) || `ffmpeg exit ${out.code}`})`);
  }
  const count = Math.floor(out.stdout.length / frameBytes);
  if (count === 0) throw new BadInputError(file, `no frames decoded${out.stderr ? ` (${lastLine(out.stderr)})` : ''}`);
  const frames: DecodedFrame[] = [];
  for (let i = 0; i < count; i++) {
    const raw = new Uint8Array(out.stdout.buffer, out.stdout.byteOffset + i * frameBytes, frameBytes);
    const sourceFrame = firstFrame + i * step;
    const rgb = options.size ? await resizeRgb(raw, width, height, options.size) : Uint8Array.from(raw);
    const side = options.size;
    frames.push({ index: i, sourceFrame, time: sourceFrame / info.fps, width: side ?? width, height: side ?? height, rgb });
  }
  return { info, frames };
}

/** Encodes RGB frames into a video file (used by the phantom); codec chosen by the extension. */
export async function encodeVideo(file: string, frames: Uint8Array[], width: number, height: number, fps: number): Promise<void> {
  const ext = file.slice(file.lastIndexOf('.') + 1).toLowerCase();
  const codec: Record<string, string[]> = {
    mp4: ['-c:v', 'mpeg4', '-q:v', '2', '-pix_fmt', 'yuv420p', '-f', 'mp4'],
    avi: ['-c:v', 'mjpeg', '-q:v', '2', '-pix_fmt', 'yuvj420p', '-f', 'avi'],
    gif: ['-f', 'gif'],
  };
  const outArgs = codec[ext];
  if (!outArgs) throw new PocovidError(`cannot encode video with extension .${ext} (mp4, avi or gif)`);
  // Written under a temporary name (the container is forced with -f) and renamed when complete.
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24',
    '-s', `${width}x${height}`, '-r', String(fps), '-i', 'pipe:0', ...outArgs, tmp];
  const input = Buffer.concat(frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)));
  await mkdir(dirname(file), { recursive: true });
  try {
    const out = await run(findFfmpeg().ffmpeg, args, file, { timeoutMs: 60_000, maxBytes: 1 << 20 }, input);
    if (out.code !== 0) throw new PocovidError(`ffmpeg could not write ${file}: ${lastLine(out.stderr)}`);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}
