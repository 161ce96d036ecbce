import { execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, encodePng, readImageAsInput } from '../../src/data/image.js';
import { encodeVideo, findFfmpeg, hardenedInputArgs, resetFfmpegCache, resolveLimits } from '../../src/media/ffmpeg.js';
import { parseFfmpegBanner, probeVideo } from '../../src/media/probe.js';
import { decodeVideoFrames, samplingStep } from '../../src/media/video.js';
import type { PretrainedCfg } from '../../src/models/types.js';
import { tempDir } from '../data/helpers.js';

const W = 32;
const H = 24;
/** Frame t: grey level 20·t everywhere, a white 4×4 square at the top-left corner (8, 4). */
function frame(t: number): Uint8Array {
  const rgb = new Uint8Array(W * H * 3).fill(20 * t);
  for (let y = 4; y < 8; y++) for (let x = 8; x < 12; x++) rgb.fill(255, (y * W + x) * 3, (y * W + x) * 3 + 3);
  return rgb;
}

let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  ({ dir, cleanup } = tempDir('ffmpeg'));
  const frames = Array.from({ length: 10 }, (_, t) => frame(t));
  await encodeVideo(join(dir, 'clip.avi'), frames, W, H, 10);
  await encodeVideo(join(dir, 'clip.mp4'), frames, W, H, 10);
  await encodeVideo(join(dir, 'clip.gif'), frames, W, H, 10);
  await encodeVideo(join(dir, 'clip25.mp4'), Array.from({ length: 30 }, (_, t) => frame(t % 13)), W, H, 25);
});
afterAll(() => cleanup());

describe('decodeVideoFrames', () => {
  it('probes container, size and rate', async () => {
    const info = await probeVideo(join(dir, 'clip.avi'));
    expect(info).toMatchObject({ demuxer: 'avi', width: W, height: H });
    expect(info.fps).toBeCloseTo(10, 3);
    expect((await probeVideo(join(dir, 'clip.mp4'))).demuxer).toBe('mov');
    expect((await probeVideo(join(dir, 'clip.gif'))).demuxer).toBe('gif');
  });

  it('keeps every floor(native/fps)-th frame, at most maxFrames, with times', async () => {
    const { frames } = await decodeVideoFrames(join(dir, 'clip.avi'), { fps: 3, maxFrames: 30 });
    expect(frames.map((f) => f.sourceFrame)).toEqual([0, 3, 6, 9]);
    expect(frames.map((f) => f.time)).toEqual([0, 0.3, 0.6, 0.9].map((t) => expect.closeTo(t, 6)));
    // Grey level tells which source frame this is (mjpeg is lossy: allow a few levels).
    for (const f of frames) expect(Math.abs(f.rgb[(20 * W + 20) * 3]! - 20 * f.sourceFrame)).toBeLessThanOrEqual(4);
    const two = await decodeVideoFrames(join(dir, 'clip.gif'), { fps: 10, maxFrames: 2 });
    expect(two.frames).toHaveLength(2);
  });

  it('applies a crop box and frame range, then resizes', async () => {
    const crop = { top: 4, left: 8, size: 8, frames: [2, 7] as [number, number] };
    const { frames } = await decodeVideoFrames(join(dir, 'clip.avi'), { fps: 5, maxFrames: 30, crop, size: 16 });
    expect(frames.map((f) => f.sourceFrame)).toEqual([2, 4, 6]);
    expect(frames[0]).toMatchObject({ width: 16, height: 16 });
    expect(frames[0]!.rgb.length).toBe(16 * 16 * 3);
    // The white square fills the crop's top-left quarter.
    expect(frames[0]!.rgb[(2 * 16 + 2) * 3]).toBeGreaterThan(230);
    expect(frames[0]!.rgb[(12 * 16 + 12) * 3]).toBeLessThan(80);
  });

  it('refuses empty, corrupt and disallowed files with the file name and the reason', async () => {
    writeFileSync(join(dir, 'empty.mp4'), '');
    await expect(decodeVideoFrames(join(dir, 'empty.mp4'), { fps: 3, maxFrames: 3 })).rejects.toThrow(/empty\.mp4: empty file/);
    writeFileSync(join(dir, 'junk.mp4'), Buffer.alloc(4000, 7));
    await expect(decodeVideoFrames(join(dir, 'junk.mp4'), { fps: 3, maxFrames: 3 })).rejects.toThrow(/junk\.mp4: not a readable video/);
    writeFileSync(join(dir, 'list.mp4'), 'ffconcat version 1.0\nfile /etc/passwd\n');
    // A concat list named .mp4 is refused for what it is, before ffmpeg sees it.
    await expect(decodeVideoFrames(join(dir, 'list.mp4'), { fps: 3, maxFrames: 3 })).rejects.toThrow(
      `${join(dir, 'list.mp4')}: not a readable video (an ffmpeg concat list is not accepted)`,
    );
    await expect(decodeVideoFrames(join(dir, 'missing.mp4'), { fps: 3, maxFrames: 3 })).rejects.toThrow(/missing\.mp4: cannot read \(ENOENT\)/);
  });

  it('enforces the output size limit', async () => {
    await expect(decodeVideoFrames(join(dir, 'clip.avi'), { fps: 10, maxFrames: 10, maxBytes: W * H * 3 * 2 })).rejects.toThrow(/exceeds \d+ bytes \(limit\)/);
  });

  it('parses the ffmpeg banner when there is no ffprobe', () => {
    const banner = "Input #0, avi, from 'x.avi':\n  Duration: 00:00:04.05, start: 0.000000, bitrate: 1 kb/s\n  Stream #0:0: Video: mjpeg (Baseline) (MJPG / 0x47504A4D), yuvj420p(pc, bt470bg/unknown/unknown), 516x516, 22.25 fps, 22.25 tbr, 22.25 tbn\n";
    expect(parseFfmpegBanner('x.avi', banner)).toEqual({ format: 'avi', width: 516, height: 516, fps: 22.25, duration: 4.05 });
  });

  it('falls back to the bundled ffmpeg when none is on PATH', async () => {
    const path = process.env.PATH;
    process.env.PATH = '';
    resetFfmpegCache();
    try {
      const tools = findFfmpeg();
      expect(tools.origin).toBe('bundled');
      const { frames } = await decodeVideoFrames(join(dir, 'clip.mp4'), { fps: 5, maxFrames: 3 });
      expect(frames.map((f) => f.sourceFrame)).toEqual([0, 2, 4]);
    } finally {
      process.env.PATH = path;
      resetFfmpegCache();
    }
  });
});

describe('sampling rule', () => {
  it('keeps every floor(native/fps)-th native frame, also when the rates do not divide', async () => {
    expect([samplingStep(25, 3), samplingStep(30, 3), samplingStep(29.97, 3), samplingStep(2, 3)]).toEqual([8, 10, 9, 1]);
    const { info, frames } = await decodeVideoFrames(join(dir, 'clip25.mp4'), { fps: 3, maxFrames: 30 });
    expect(info.fps).toBeCloseTo(25, 3);
    expect(frames.map((f) => f.sourceFrame)).toEqual([0, 8, 16, 24]);
    expect(frames.map((f) => f.time)).toEqual([0, 0.32, 0.64, 0.96].map((t) => expect.closeTo(t, 6)));
    expect(frames.map((f) => f.index)).toEqual([0, 1, 2, 3]);
  });

  it('takes a native frame range without a crop box, and [height, width] sizes', async () => {
    const { frames } = await decodeVideoFrames(join(dir, 'clip.avi'), { fps: 5, maxFrames: 2, frameRange: [3, 9], size: [6, 8] });
    expect(frames.map((f) => f.sourceFrame)).toEqual([3, 5]);
    expect(frames[0]).toMatchObject({ width: 8, height: 6 });
    expect(frames[0]!.rgb.length).toBe(6 * 8 * 3);
    for (const f of frames) expect(Math.abs(f.rgb[(5 * 8 + 7) * 3]! - 20 * f.sourceFrame)).toBeLessThanOrEqual(4);
    await expect(decodeVideoFrames(join(dir, 'clip.avi'), { fps: 5, maxFrames: 2, frameRange: [5, 2] })).rejects.toThrow(/frame range must be/);
  });
});

describe('hardening', () => {
  it('forces a whitelisted demuxer and only the file protocol on every run', () => {
    const args = hardenedInputArgs('mov', resolveLimits({ maxPixels: 1000, maxAllocBytes: 2048 }));
    expect(args).toEqual(['-max_alloc', '2048', '-protocol_whitelist', 'file', '-format_whitelist', 'bmp_pipe,gif,avi,mov,matroska,mpeg,mpegvideo,mpegts', '-f', 'mov', '-max_pixels', '1000']);
    for (const demuxer of ['hls', 'concat', 'image2', 'lavfi']) expect(() => hardenedInputArgs(demuxer, resolveLimits())).toThrow(`demuxer "${demuxer}" is not allowed`);
    expect(() => resolveLimits({ timeoutMs: 0 })).toThrow(/timeoutMs must be a positive number/);
  });

  it('never lets a playlist or concat list in the data folder open another file', async () => {
    // A FIFO with a writer waiting: if anything opened it for reading, the marker would appear.
    const fifo = join(dir, 'secret.avi');
    const marker = join(dir, 'secret-was-read');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('/bin/sh', ['-c', `printf x > '${fifo}' && touch '${marker}'`], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, 'Cov_list.mp4'), `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:${fifo}\n#EXT-X-ENDLIST\n`);
      await expect(decodeVideoFrames(join(dir, 'Cov_list.mp4'), { fps: 3, maxFrames: 3 })).rejects.toThrow(/Cov_list\.mp4: not a readable video \(an HLS playlist \(m3u8\) is not accepted\)/);
      writeFileSync(join(dir, 'Cov_concat.avi'), `ffconcat version 1.0\nfile ${fifo}\n`);
      await expect(decodeVideoFrames(join(dir, 'Cov_concat.avi'), { fps: 3, maxFrames: 3 })).rejects.toThrow(/Cov_concat\.avi: not a readable video \(an ffmpeg concat list/);
      // The pipe itself, named like a video, is refused without blocking on it.
      await expect(decodeVideoFrames(fifo, { fps: 3, maxFrames: 3 })).rejects.toThrow(/secret\.avi: not a regular file/);
      await new Promise((r) => setTimeout(r, 200));
      expect(existsSync(marker)).toBe(false);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('enforces picture size, time and memory limits', async () => {
    const file = join(dir, 'clip.avi');
    await expect(decodeVideoFrames(file, { fps: 3, maxFrames: 3, maxPixels: 500 })).rejects.toThrow(/clip\.avi: .*(over the limit|max pixel)/);
    await expect(decodeVideoFrames(file, { fps: 3, maxFrames: 3, timeoutMs: 1 })).rejects.toThrow(/clip\.avi: decoding took longer than 1 ms \(limit\)/);
    // 4 MiB of address space is not enough to even start ffmpeg: proof that ulimit -v applies.
    await expect(decodeVideoFrames(file, { fps: 3, maxFrames: 3, maxMemoryBytes: 4 * 1024 ** 2 })).rejects.toThrow(/clip\.avi: not a readable video/);
    expect((await decodeVideoFrames(file, { fps: 3, maxFrames: 3 })).frames).toHaveLength(3);
  });

  it('refuses a still image given as a video', async () => {
    writeFileSync(join(dir, 'still.mp4'), await encodePng(frame(1), W, H));
    await expect(decodeVideoFrames(join(dir, 'still.mp4'), { fps: 3, maxFrames: 3 })).rejects.toThrow(/still\.mp4: is a png image, not a video/);
  });
});

describe('images', () => {
  it('decodes grey and alpha images to RGB, crops and resizes', async () => {
    const rgb = frame(0);
    const png = await encodePng(rgb, W, H);
    const image = await decodeImage(png, [12, 16], { top: 4, left: 8, size: 4 });
    expect(image).toMatchObject({ width: 16, height: 12 });
    expect(image.rgb.every((v) => v > 240)).toBe(true);
    await expect(decodeImage(Buffer.from('not an image'))).rejects.toThrow(/<image buffer>: not a readable image/);
  });

  it('reads an image as model input through the pretrained config', async () => {
    const { dir: d, cleanup: done } = tempDir('img');
    try {
      writeFileSync(join(d, 'a.png'), await encodePng(frame(5), W, H));
      const cfg: PretrainedCfg = { id: 't', inputSize: [6, 8], channels: 3, channelOrder: 'rgb', mean: [0, 0, 0], std: [1, 1, 1], camLayer: '', classifier: '', featureLayer: '', sources: [] };
      const x = await readImageAsInput(join(d, 'a.png'), cfg);
      expect(x.length).toBe(6 * 8 * 3);
      expect(x[(5 * 8 + 0) * 3]).toBeCloseTo(100 / 255, 2);
      const grey = await readImageAsInput(join(d, 'a.png'), { ...cfg, channels: 1, mean: [0.5], std: [0.5] });
      expect(grey.length).toBe(6 * 8);
    } finally {
      done();
    }
  });
});
