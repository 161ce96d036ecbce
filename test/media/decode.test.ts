// Model-input frames from files: images through sharp, BMP and videos through src/media.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImageTo, decodeVideoTo } from '../../src/media/decode.js';
import { findFfmpeg } from '../../src/media/ffmpeg.js';
import { writePng, writeVideo } from '../helpers/media_fixtures.js';

let work: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'pocovid-media-'));
  await writePng(join(work, 'a.png'), 40, 30, 4);
  execFileSync(findFfmpeg().ffmpeg, ['-nostdin', '-loglevel', 'error', '-y', '-i', join(work, 'a.png'), join(work, 'a.bmp')]);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('decodeImageTo / decodeVideoTo', () => {
  it('decodes a BMP (through ffmpeg) to the same pixels as the same picture in PNG', async () => {
    const png = await decodeImageTo(join(work, 'a.png'), 16, 12);
    const bmp = await decodeImageTo(join(work, 'a.bmp'), 16, 12);
    expect(bmp).toMatchObject({ width: 16, height: 12, index: 0, time: 0, sourceFrame: 0 });
    expect(bmp.rgb.length).toBe(16 * 12 * 3);
    let worst = 0;
    for (let i = 0; i < png.rgb.length; i++) worst = Math.max(worst, Math.abs(png.rgb[i]! - bmp.rgb[i]!));
    expect(worst).toBeLessThanOrEqual(1);
    await expect(decodeImageTo(new Uint8Array(readFileSync(join(work, 'a.bmp'))), 16, 12)).rejects.toThrow(/BMP is decoded from a file only/);
  });

  it('samples a video with native frame numbers, and refuses the wrong kind', async () => {
    const video = writeVideo(work, 'clip.mp4', 1);
    const frames = await decodeVideoTo(video, 16, 16, { fps: 2, maxFrames: 10 });
    expect(frames.map((f) => [f.index, f.sourceFrame])).toEqual([[0, 0], [1, 3]]);
    expect(frames.map((f) => f.time)).toEqual([0, 0.5]);
    await expect(decodeVideoTo(join(work, 'a.png'), 16, 16)).rejects.toThrow(/a\.png: is a png image, not a video/);
    await expect(decodeImageTo(video, 16, 16)).rejects.toThrow(/clip\.mp4: is a mp4 video, not an image/);
    await expect(decodeVideoTo(video, 16, 16, { fps: 0 })).rejects.toThrow(/fps must be in \(0, 60\]/);
  });
});
