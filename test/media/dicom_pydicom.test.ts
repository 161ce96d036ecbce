// Cross-check against pydicom, an independent DICOM implementation: files pydicom writes (its
// own RLE encoder, big endian, implicit VR, deflate, palette, YBR) must decode to the frames
// pydicom decodes. Runs where Debian's python3-pydicom is installed (.ci/run installs it).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDicomFrames } from '../../src/media/dicom_frames.js';
import { tempDir } from '../data/helpers.js';

const PYTHON = '/usr/bin/python3';
const script = fileURLToPath(new URL('./pydicom_crosscheck.py', import.meta.url));
const available = spawnSync(PYTHON, ['-c', 'import pydicom, numpy'], { encoding: 'utf8' }).status === 0;

interface Case { name: string; file: string; expected: string; frames: number; rows: number; columns: number; fps: number | null; tolerance: number }

describe.skipIf(!available)('DICOM files written by pydicom', () => {
  let root: string;
  let cleanup: () => void;
  let cases: Case[] = [];
  beforeAll(() => {
    ({ dir: root, cleanup } = tempDir('pydicom'));
    const run = spawnSync(PYTHON, [script, root], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`pydicom_crosscheck.py failed: ${run.stderr}`);
    cases = (JSON.parse(run.stdout) as { cases: Case[] }).cases;
  });
  afterAll(() => cleanup());

  it('decode to the frames pydicom decodes, at the rate the timing tags give', async () => {
    expect(cases.map((c) => c.name).sort()).toEqual(['grey12_rle.dcm', 'grey8_deflated.dcm', 'grey8_explicit.dcm', 'grey8_implicit.dcm', 'palette16.dcm', 'rgb8_planar_be.dcm', 'rgb8_rle.dcm', 'ybr_full.dcm']);
    for (const c of cases) {
      const { info, frames } = await decodeDicomFrames(c.file, { fps: 1000, maxFrames: 100 });
      expect([c.name, frames.length, info.width, info.height]).toEqual([c.name, c.frames, c.columns, c.rows]);
      if (c.fps !== null) expect([c.name, info.fps]).toEqual([c.name, expect.closeTo(c.fps, 9)]);
      const expected = readFileSync(c.expected);
      const frameBytes = c.rows * c.columns * 3;
      for (const [k, frame] of frames.entries()) {
        const reference = expected.subarray(k * frameBytes, (k + 1) * frameBytes);
        let worst = 0;
        for (let i = 0; i < frameBytes; i++) worst = Math.max(worst, Math.abs(frame.rgb[i]! - reference[i]!));
        expect([c.name, k, worst]).toEqual([c.name, k, expect.toSatisfy((w: number) => w <= c.tolerance)]);
      }
    }
  });
});
