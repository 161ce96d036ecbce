// ffmpeg as a library: locate the binary and run it under limits. Every file we decode may come
// from an upload or from the internet, so a run on an input file always gets: only the `file`
// protocol (a playlist or concat list cannot open other files or the network), a demuxer forced
// from the sniffed bytes and also whitelisted, caps on one allocation and on picture size, an
// address-space limit (ulimit -v), a wall-clock limit and a cap on the bytes read back.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, delimiter, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { BadInputError, PocovidError } from '../errors.js';
import { ALLOWED_DEMUXERS } from './sniff.js';

export interface FfmpegTools {
  ffmpeg: string;
  /** ffprobe next to the system ffmpeg; the bundled build has none (we parse ffmpeg's banner). */
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

/** The system ffmpeg when on PATH, else the static binary of @ffmpeg-installer/ffmpeg (ffmpeg 4, no ffprobe). */
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

export interface DecodeLimits {
  /** Wall-clock limit for one ffmpeg/ffprobe run (ms). */
  timeoutMs: number;
  /** Cap on the raw RGB bytes read back from one run. */
  maxBytes: number;
  /** Seconds of input read at most. */
  maxSeconds: number;
  /** Address-space limit of the ffmpeg process (bytes; ulimit -v where there is a POSIX shell). */
  maxMemoryBytes: number;
  /** Largest single allocation ffmpeg may make (bytes). */
  maxAllocBytes: number;
  /** Largest decoded picture (pixels). */
  maxPixels: number;
}

export const DEFAULT_LIMITS: Readonly<DecodeLimits> = {
  timeoutMs: 60_000,
  maxBytes: 1024 ** 3,
  maxSeconds: 600,
  maxMemoryBytes: 2 * 1024 ** 3,
  maxAllocBytes: 256 * 1024 ** 2,
  maxPixels: 4096 * 4096,
};

/** Limits as options take them: each one optional. */
export type LimitOptions = Partial<DecodeLimits>;

/** Defaults filled in; undefined entries of `partial` mean "default", anything else must be positive. */
export function resolveLimits(partial: Partial<DecodeLimits> = {}): DecodeLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof DecodeLimits)[]) {
    const value = partial[key];
    if (value === undefined) continue;
    if (!(Number.isFinite(value) && value > 0)) throw new PocovidError(`decoder limit ${key} must be a positive number, got ${value}`);
    limits[key] = value;
  }
  return limits;
}

/**
 * The options that go before `-i` for any untrusted input (ffmpeg and ffprobe take the same):
 * the forced demuxer must be one sniffType can choose, and the whitelist holds only those.
 */
export function hardenedInputArgs(demuxer: string, limits: DecodeLimits): string[] {
  if (!(ALLOWED_DEMUXERS as readonly string[]).includes(demuxer)) {
    throw new PocovidError(`demuxer "${demuxer}" is not allowed (allowed: ${ALLOWED_DEMUXERS.join(', ')})`);
  }
  return [
    '-max_alloc', String(Math.floor(limits.maxAllocBytes)),
    '-protocol_whitelist', 'file',
    '-format_whitelist', ALLOWED_DEMUXERS.join(','),
    '-f', demuxer,
    '-max_pixels', String(Math.floor(limits.maxPixels)),
  ];
}

/** Flow control for a run whose stdout is consumed as it arrives. */
export interface StdoutControl {
  stdout: Readable;
  /** Kills the run; the promise rejects with this error. */
  abort(error: Error): void;
}

export interface RunRequest {
  binary: string;
  args: string[];
  /** The input file, for error messages. */
  file: string;
  timeoutMs: number;
  /** The run is killed and fails when stdout grows past this. */
  maxBytes: number;
  /** Address-space limit; none when undefined. */
  maxMemoryBytes?: number;
  stdin?: Uint8Array;
  /** Consumes stdout chunk by chunk; without it stdout is collected into RunResult.stdout. */
  onStdout?: (chunk: Buffer, control: StdoutControl) => void;
}

export interface RunResult {
  /** Collected stdout (empty when onStdout consumed it). */
  stdout: Buffer;
  /** The last 20 kB of stderr. */
  stderr: string;
  code: number | null;
}

const HAS_POSIX_SHELL = process.platform !== 'win32' && existsSync('/bin/sh');

/** Runs a binary with a wall-clock limit, a cap on stdout and (on POSIX) an address-space limit. */
export function runTool(request: RunRequest): Promise<RunResult> {
  const { binary, args, file } = request;
  // ulimit -v bounds the address space, so a crafted file cannot make ffmpeg eat the machine's
  // memory. If it cannot be set, a lower hard limit is already in force, which is as safe.
  const [command, argv] =
    request.maxMemoryBytes !== undefined && HAS_POSIX_SHELL
      ? ['/bin/sh', ['-c', `ulimit -v ${Math.floor(request.maxMemoryBytes / 1024)} 2>/dev/null; exec "$0" "$@"`, binary, ...args]]
      : [binary, args];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: [request.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let stderr = '';
    let failure: Error | undefined;
    const abort = (error: Error) => {
      failure ??= error;
      child.kill('SIGKILL');
    };
    const control: StdoutControl = { stdout: child.stdout!, abort };
    const timer = setTimeout(() => abort(new BadInputError(file, `decoding took longer than ${request.timeoutMs} ms (limit)`)), request.timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (failure) return;
      bytes += chunk.length;
      if (bytes > request.maxBytes) return abort(new BadInputError(file, `decoded output exceeds ${request.maxBytes} bytes (limit)`));
      if (request.onStdout) request.onStdout(chunk, control);
      else chunks.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-20_000);
    });
    if (request.stdin) {
      child.stdin!.on('error', () => undefined); // ffmpeg may exit before reading everything
      child.stdin!.end(request.stdin);
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

/** The last non-empty line of ffmpeg's stderr: usually the reason it failed. */
export function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}

/** Encodes RGB frames into a video file (the phantom and tests; trusted input); codec chosen by the extension. */
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
    const out = await runTool({ binary: findFfmpeg().ffmpeg, args, file, timeoutMs: 60_000, maxBytes: 1 << 20, stdin: input });
    if (out.code !== 0) throw new PocovidError(`ffmpeg could not write ${file}: ${lastLine(out.stderr)}`);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}
