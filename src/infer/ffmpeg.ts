// ffmpeg, hardened for untrusted input. A thin wrapper of our own (src/data/ had no decoder when
// this was written): the demuxer is forced from the sniffed bytes and also whitelisted, only the
// file protocol is allowed (so a playlist or concat list cannot open other files or the network),
// and time, output size, single-allocation size and address space are all bounded.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { ALLOWED_DEMUXERS } from './sniff.js';

let ffmpegPath: string | undefined;

/** Debian's ffmpeg when on PATH, else the static binary of @ffmpeg-installer/ffmpeg. */
export function findFfmpeg(): string {
  if (ffmpegPath) return ffmpegPath;
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const candidate = `${dir}/ffmpeg`;
    if (dir && existsSync(candidate)) return (ffmpegPath = candidate);
  }
  const require = createRequire(import.meta.url);
  return (ffmpegPath = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path);
}

export interface DecodeLimits {
  /** Wall-clock limit for one ffmpeg run (ms). */
  timeoutMs: number;
  /** Seconds of input read at most. */
  maxSeconds: number;
  /** Address-space limit for the ffmpeg process (bytes). */
  maxMemoryBytes: number;
  /** Largest single allocation ffmpeg may make (bytes). */
  maxAllocBytes: number;
  /** Largest decoded picture (pixels). */
  maxPixels: number;
}

export const DEFAULT_LIMITS: DecodeLimits = {
  timeoutMs: 60_000,
  maxSeconds: 600,
  maxMemoryBytes: 2 * 1024 ** 3,
  maxAllocBytes: 256 * 1024 ** 2,
  maxPixels: 4096 * 4096,
};

export interface RawFramesRequest {
  file: string;
  /** ffmpeg demuxer chosen by sniffType. */
  demuxer: string;
  width: number;
  height: number;
  /** Frames per second to sample; undefined keeps every frame. */
  fps?: number;
  maxFrames: number;
  limits?: Partial<DecodeLimits>;
}

/** Decodes frames as interleaved RGB, resized to width×height. Returns whole frames only. */
export function decodeRawFrames(request: RawFramesRequest): Promise<Uint8Array[]> {
  const limits = { ...DEFAULT_LIMITS, ...request.limits };
  if (!(ALLOWED_DEMUXERS as readonly string[]).includes(request.demuxer)) {
    return Promise.reject(new Error(`demuxer "${request.demuxer}" is not allowed`));
  }
  const filters = [request.fps ? `fps=${request.fps}` : undefined, `scale=${request.width}:${request.height}:flags=area`]
    .filter(Boolean)
    .join(',');
  const args = [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-threads', '1',
    '-max_alloc', String(limits.maxAllocBytes),
    '-protocol_whitelist', 'file',
    '-format_whitelist', ALLOWED_DEMUXERS.join(','),
    '-f', request.demuxer,
    '-max_pixels', String(limits.maxPixels),
    '-t', String(limits.maxSeconds),
    '-i', `file:${resolve(request.file)}`,
    '-map', '0:v:0', '-an', '-sn', '-dn',
    '-vf', filters,
    '-frames:v', String(request.maxFrames),
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1',
  ];
  const frameBytes = request.width * request.height * 3;
  const maxBytes = frameBytes * request.maxFrames;
  return new Promise((resolvePromise, reject) => {
    // ulimit -v bounds the address space: a crafted file cannot make ffmpeg eat the machine's memory.
    const child = spawn('/bin/sh', ['-c', `ulimit -v ${Math.floor(limits.maxMemoryBytes / 1024)} && exec "$0" "$@"`, findFfmpeg(), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    let received = 0;
    let stderr = '';
    let failure: string | undefined;
    const timer = setTimeout(() => {
      failure = `decoding took longer than ${limits.timeoutMs} ms`;
      child.kill('SIGKILL');
    }, limits.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes) {
        failure = 'decoder produced more data than requested';
        child.kill('SIGKILL');
        return;
      }
      chunks.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 4000) stderr += chunk.toString();
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (failure) return reject(new Error(failure));
      const data = Buffer.concat(chunks);
      const count = Math.floor(data.length / frameBytes);
      if (code !== 0 && count === 0) {
        const message = stderr.trim().split('\n').slice(-2).join('; ') || `ffmpeg exited with code ${code}`;
        return reject(new Error(`cannot decode: ${message}`));
      }
      if (count === 0) return reject(new Error('no video frames could be decoded'));
      const frames: Uint8Array[] = [];
      for (let i = 0; i < count; i++) frames.push(new Uint8Array(data.buffer, data.byteOffset + i * frameBytes, frameBytes));
      resolvePromise(frames);
    });
  });
}
