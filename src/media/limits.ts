// Decoder limits and the hardened ffmpeg input options every untrusted file gets: only the `file`
// protocol (a playlist or concat list cannot open other files or the network), a demuxer forced
// from the sniffed bytes and also whitelisted, caps on one allocation, on picture size and on the
// seconds read. Pure data: the in-browser page runs ffmpeg.wasm with the same options.
import { PocovidError } from '../errors.js';
import { ALLOWED_DEMUXERS } from './formats.js';

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

