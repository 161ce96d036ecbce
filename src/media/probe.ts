// Size, native frame rate and duration of a video whose demuxer was already chosen from its bytes.
// The probe runs with the same hardening as the decode (forced + whitelisted demuxer, file
// protocol only, limits): ffprobe when it exists, else the banner of `ffmpeg -i` (the bundled
// ffmpeg 4 has no ffprobe).
import { BadInputError } from '../errors.js';
import { findFfmpeg, runTool } from './ffmpeg.js';
import { describeUnknown, sniffType, type SniffedType } from './formats.js';
import { resolveLimits, type DecodeLimits } from './limits.js';
import { readHead } from './sniff.js';
import { bannerArgs, ffprobeArgs, lastLine, parseBanner, parseProbeJson, type VideoInfo } from './video_info.js';

export type { VideoInfo };

/** Probe output is a few hundred bytes of JSON; anything bigger is not a probe answer. */
const PROBE_MAX_BYTES = 1 << 20;

/** Probes a video with its demuxer forced; BadInputError when ffmpeg cannot read it as that. */
export async function probeWithDemuxer(file: string, demuxer: string, limits: DecodeLimits): Promise<VideoInfo> {
  const tools = findFfmpeg();
  const input = `file:${file}`;
  const run = { file, timeoutMs: limits.timeoutMs, maxBytes: PROBE_MAX_BYTES, maxMemoryBytes: limits.maxMemoryBytes };
  const unreadable = (stderr: string, code: number | null) =>
    new BadInputError(file, `not a readable video: cannot decode it as ${demuxer} (${lastLine(stderr) || `exit code ${code}`})`);
  if (tools.ffprobe) {
    const out = await runTool({ ...run, binary: tools.ffprobe, args: ffprobeArgs(input, demuxer, limits) });
    if (out.code !== 0) throw unreadable(out.stderr, out.code);
    const info = parseProbeJson(file, demuxer, out.stdout.toString('utf8'), limits, out.stderr);
    if (!info) throw unreadable(out.stderr, out.code);
    return info;
  }
  // No ffprobe: `ffmpeg -i` prints the same facts on stderr before failing for want of an output.
  const out = await runTool({ ...run, binary: tools.ffmpeg, args: bannerArgs(input, demuxer, limits) });
  if (!/Input #0, /.test(out.stderr)) throw unreadable(out.stderr, out.code);
  return parseBanner(file, demuxer, out.stderr, limits);
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
