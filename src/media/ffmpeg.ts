// ffmpeg as a library: locate the binary and run it under limits. Every file we decode may come
// from an upload or from the internet, so a run on an input file always gets the hardened input
// options of src/media/limits.ts, an address-space limit (ulimit -v), a wall-clock limit and a
// cap on the bytes read back.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, delimiter, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { BadInputError, PocovidError } from '../errors.js';
import { lastLine } from './video_info.js';

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

/** Encodes RGB frames into a video file (the phantom and tests; trusted input); codec chosen by the extension. */
export async function encodeVideo(file: string, frames: Uint8Array[], width: number, height: number, fps: number): Promise<void> {
  const ext = file.slice(file.lastIndexOf('.') + 1).toLowerCase();
  const codec: Record<string, string[]> = {
    mp4: ['-c:v', 'mpeg4', '-q:v', '2', '-pix_fmt', 'yuv420p', '-f', 'mp4'],
    avi: ['-c:v', 'mjpeg', '-q:v', '2', '-pix_fmt', 'yuvj420p', '-f', 'avi'],
    // A palette made from the clip itself: ffmpeg's default 3-3-2-bit colours tint grey frames
    // (channel differences up to ~100), which the not-ultrasound guard rightly calls colourful.
    gif: ['-vf', 'split[a][b];[a]palettegen=max_colors=256:stats_mode=full[p];[b][p]paletteuse=dither=none', '-f', 'gif'],
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
