// Videos (GIF, MP4, AVI, MOV, MPEG, WebM/MKV, TS) and BMP images in the page: ffmpeg.wasm, served
// with the page and loaded the first time such a file comes in (never from a CDN), running the very
// probe and decode commands the CLI runs (src/media/video_info.ts, src/media/sampling.ts). The
// browser's own <video> cannot do this: it exposes no native frame rate and seeks by time, so it
// would sample other frames than `data build` and `predict` do. The file stays in this tab: it is
// written to ffmpeg.wasm's in-memory file system and nowhere else.
import { FFmpeg } from '@ffmpeg/ffmpeg';
import { BadInputError } from '../../errors.js';
import type { SniffedType } from '../../media/formats.js';
import { resolveLimits, type DecodeLimits } from '../../media/limits.js';
import { decodePlan, type SamplingOptions } from '../../media/sampling.js';
import { bannerArgs, ffprobeArgs, lastLine, parseBanner, parseProbeJson, type VideoInfo } from '../../media/video_info.js';

/** The files scripts/build-page.mjs puts next to app.js. */
export const FFMPEG_FILES = { worker: 'ffmpeg-worker.js', core: 'ffmpeg-core.js', wasm: 'ffmpeg-core.wasm' } as const;

let loading: Promise<FFmpeg> | undefined;

/** Seconds the last load of ffmpeg.wasm took (reported apart from the time per frame). */
let loadSeconds = 0;

/** ffmpeg.wasm, loaded once (about 32 MB of WebAssembly from this page's folder). */
function ffmpeg(): Promise<FFmpeg> {
  loading ??= (async () => {
    const started = performance.now();
    const instance = new FFmpeg();
    const here = (name: string) => new URL(name, document.baseURI).href;
    await instance.load({ classWorkerURL: here(FFMPEG_FILES.worker), coreURL: here(FFMPEG_FILES.core), wasmURL: here(FFMPEG_FILES.wasm) });
    loadSeconds = (performance.now() - started) / 1000;
    return instance;
  })().catch((err: unknown) => {
    loading = undefined;
    throw new Error(`the video decoder (ffmpeg.wasm) could not be loaded: ${(err as Error).message ?? err}`);
  });
  return loading;
}

/** Whether ffmpeg.wasm has been loaded (the page's test checks it is not, for an image). */
export function ffmpegLoaded(): boolean {
  return loading !== undefined;
}

export interface RawFrame {
  /** Position among the frames kept. */
  index: number;
  /** Native frame number. */
  sourceFrame: number;
  /** Seconds from the start. */
  time: number;
  width: number;
  height: number;
  /** Native-size interleaved RGB. */
  rgb: Uint8Array;
}

const INPUT = '/input';
const PROBE = '/probe.json';
const OUTPUT = '/frames.rgb';

/** Runs `args`, collecting ffmpeg's log lines; the exit code and the log. */
async function run(ff: FFmpeg, kind: 'exec' | 'ffprobe', args: string[], timeoutMs: number): Promise<{ code: number; log: string }> {
  const lines: string[] = [];
  const listener = ({ message }: { message: string }) => void lines.push(message);
  ff.on('log', listener);
  try {
    const code = kind === 'exec' ? await ff.exec(args, timeoutMs) : await ff.ffprobe(args, timeoutMs);
    return { code, log: lines.join('\n') };
  } finally {
    ff.off('log', listener);
  }
}

async function probe(ff: FFmpeg, name: string, demuxer: string, limits: DecodeLimits): Promise<VideoInfo> {
  const input = `file:${INPUT}`;
  // ffmpeg.wasm 0.12's ffprobe answers -1 even when it succeeds: its written answer is what counts.
  const probed = await run(ff, 'ffprobe', [...ffprobeArgs(input, demuxer, limits), '-o', PROBE], limits.timeoutMs);
  const text = await ff.readFile(PROBE, 'utf8').catch(() => '');
  const info = typeof text === 'string' && text.trim() ? parseProbeJson(name, demuxer, text, limits, probed.log) : undefined;
  if (info) return info;
  // As in Node without ffprobe: `ffmpeg -i` prints the input's facts before failing for want of an output.
  const banner = await run(ff, 'exec', bannerArgs(input, demuxer, limits), limits.timeoutMs);
  if (!/Input #0, /.test(banner.log)) {
    throw new BadInputError(name, `not a readable video: cannot decode it as ${demuxer} (${lastLine(banner.log) || `exit code ${banner.code}`})`);
  }
  return parseBanner(name, demuxer, banner.log, limits);
}

async function remove(ff: FFmpeg, path: string): Promise<void> {
  try {
    await ff.deleteFile(path);
  } catch {
    // not there
  }
}

/**
 * Decodes a video's sampled frames at native size, exactly as src/media/video.ts does in Node.
 * `bytes` is handed to the decoder's worker (its buffer is transferred, not copied).
 */
export async function decodeInPage(
  name: string,
  bytes: Uint8Array,
  type: SniffedType,
  sampling: SamplingOptions,
  onStatus: (line: string) => void,
): Promise<{ frames: RawFrame[]; decoderLoadSeconds: number }> {
  if (!type.demuxer) throw new BadInputError(name, `${type.format} is not decoded by ffmpeg`);
  const first = !ffmpegLoaded();
  if (first) onStatus('Loading the video decoder (ffmpeg.wasm, once per visit)…');
  const ff = await ffmpeg();
  const decoderLoadSeconds = first ? loadSeconds : 0;
  const limits = resolveLimits();
  try {
    await ff.writeFile(INPUT, bytes);
    onStatus(`Reading ${name}…`);
    const info = await probe(ff, name, type.demuxer, limits);
    const plan = decodePlan(name, `file:${INPUT}`, info, sampling, limits, OUTPUT);
    const decoded = await run(ff, 'exec', plan.args, limits.timeoutMs);
    const raw = await ff.readFile(OUTPUT).catch(() => new Uint8Array(0));
    const data = typeof raw === 'string' ? new Uint8Array(0) : raw;
    const frameBytes = plan.width * plan.height * 3;
    const count = Math.min(sampling.maxFrames, Math.floor(data.length / frameBytes));
    if (count === 0) throw new BadInputError(name, decoded.code !== 0 ? `cannot decode (${lastLine(decoded.log) || `ffmpeg exit ${decoded.code}`})` : 'no frames decoded');
    const frames = Array.from({ length: count }, (_, index) => {
      const sourceFrame = plan.firstFrame + index * plan.step;
      return { index, sourceFrame, time: sourceFrame / plan.fps, width: plan.width, height: plan.height, rgb: data.subarray(index * frameBytes, (index + 1) * frameBytes) };
    });
    return { frames, decoderLoadSeconds };
  } finally {
    for (const path of [INPUT, PROBE, OUTPUT]) await remove(ff, path);
  }
}
