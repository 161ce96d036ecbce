// H.264 re-encoding: the clip really is H.264 (avc1 in the MP4), every frame comes back at its own
// size (odd sides too), changed by the codec but close to the original.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RgbImage } from '../../src/media/resize.js';
import { meanAbsoluteDifference } from '../../src/data/perturb.js';
import { PHANTOM_CLASSES, renderPhantomFrame, samplePhantomScene } from '../../src/data/phantom.js';
import { encodeH264Clip, h264RoundTrip } from '../../src/media/h264.js';
import { createRng } from '../../src/util/rng.js';

const work = mkdtempSync(join(tmpdir(), 'pocovid-h264-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function clip(width: number, height: number, count: number): RgbImage[] {
  const size = Math.max(width, height);
  const rng = createRng(7);
  const scene = samplePhantomScene(PHANTOM_CLASSES[1]!, size, rng);
  return Array.from({ length: count }, (_, t) => {
    const full = renderPhantomFrame(scene, t, rng);
    const rgb = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) rgb.set(full.subarray(y * size * 3, (y * size + width) * 3), y * width * 3);
    return { width, height, rgb };
  });
}

describe('H.264 re-encoding', () => {
  it('writes an H.264 (avc1) MP4', async () => {
    const file = join(work, 'clip.mp4');
    await encodeH264Clip(file, clip(48, 48, 4), 3);
    const bytes = readFileSync(file);
    expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
    expect(bytes.includes(Buffer.from('avc1'))).toBe(true);
    expect(bytes.includes(Buffer.from('avcC'))).toBe(true);
    expect(bytes.includes(Buffer.from('mp4v'))).toBe(false); // not the MPEG-4 part 2 the phantom uses
  });

  it.each([
    [48, 48],
    [47, 33],
  ])('gives back every frame of a %ix%i clip, changed a little by the codec', async (width, height) => {
    const frames = clip(width, height, 6);
    const back = await h264RoundTrip(frames, 3);
    expect(back).toHaveLength(6);
    for (const [i, rgb] of back.entries()) {
      expect(rgb.length).toBe(width * height * 3);
      const d = meanAbsoluteDifference(frames[i]!, { width, height, rgb });
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThan(6);
    }
    // Frame order is kept: each decoded frame is nearest to its own original.
    for (const [i, rgb] of back.entries()) {
      const distances = frames.map((f) => meanAbsoluteDifference(f, { width, height, rgb }));
      expect(distances.indexOf(Math.min(...distances))).toBe(i);
    }
  });

  it('refuses frames of different sizes', async () => {
    await expect(h264RoundTrip([...clip(16, 16, 1), ...clip(18, 16, 1)], 3)).rejects.toThrow(/frames of one size/);
  });
});
