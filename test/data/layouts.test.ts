// `data build` on a user's own folders: DIR/<class>/<files> and DIR/<class>/<patient>/<files>,
// class folders matched by name or --class-map, patients from folders (else each file alone,
// with a warning), and an error listing the accepted layouts for anything else.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { buildDataset } from '../../src/data/build.js';
import { openDataset } from '../../src/data/dataset.js';
import { ACCEPTED_LAYOUTS, listBuildSources, parseClassMap } from '../../src/data/layouts.js';
import { encodeVideo } from '../../src/media/ffmpeg.js';
import { pattern } from '../infer/fixtures.js';
import { tempDir } from './helpers.js';

let root: string;
let cleanup: () => void;
let source: string;

async function png(path: string, variant: number): Promise<void> {
  mkdirSync(join(path, '..'), { recursive: true });
  await sharp(Buffer.from(pattern(24, 24, variant)), { raw: { width: 24, height: 24, channels: 3 } }).png().toFile(path);
}

beforeAll(async () => {
  ({ dir: root, cleanup } = tempDir('layouts'));
  source = join(root, 'mine');
  // Patient folders (one nested deeper, as exports do), a loose file, a patient under two classes.
  await png(join(source, 'COVID-19', 'p01', 'a.png'), 1);
  await encodeVideo(join(source, 'COVID-19', 'p01', 'exam 2', 'b.avi'), [2, 3, 4, 5, 6, 7].map((v) => pattern(24, 24, v)), 24, 24, 6);
  await png(join(source, 'COVID-19', 'p03', 'c.png'), 8);
  await png(join(source, 'COVID-19', 'loose.png'), 9);
  await png(join(source, 'Healthy', 'p01', 'after.png'), 10);
  await png(join(source, 'Healthy', 'p02', 'd.png'), 11);
  await png(join(source, 'Healthy', 'p04', 'e.png'), 12);
  await png(join(source, 'PNEUMONIA', 'f.png'), 13);
  await png(join(source, 'PNEUMONIA', 'g.png'), 14);
  await png(join(source, 'PNEUMONIA', 'p05', 'h.png'), 15);
  await png(join(source, 'viral', 'v.png'), 16);
  await png(join(source, 'Other', 'x.png'), 17);
  writeFileSync(join(source, 'README.txt'), 'notes');
  writeFileSync(join(source, 'Healthy', 'p02', 'report.txt'), 'not an image');
});
afterAll(() => cleanup());

describe('class-folder layouts', () => {
  it('lists sources with labels from class folders (mapped or by name, any case) and patients from sub-folders', async () => {
    const listing = await listBuildSources(source, { probes: ['convex'], classes: ['covid', 'pneumonia', 'regular'], classMap: parseClassMap('covid=COVID-19,regular=Healthy', ['covid', 'pneumonia', 'regular']) });
    expect(listing.layout).toBe('class-folders');
    expect(listing.items.map((i) => [i.rel, i.label, i.patientFolder ?? null, i.kind, i.probe])).toEqual([
      ['COVID-19/loose.png', 'covid', null, 'image', 'unknown'],
      ['COVID-19/p01/a.png', 'covid', 'p01', 'image', 'unknown'],
      ['COVID-19/p01/exam 2/b.avi', 'covid', 'p01', 'video', 'unknown'],
      ['COVID-19/p03/c.png', 'covid', 'p03', 'image', 'unknown'],
      ['Healthy/p01/after.png', 'regular', 'p01', 'image', 'unknown'],
      ['Healthy/p02/d.png', 'regular', 'p02', 'image', 'unknown'],
      ['Healthy/p04/e.png', 'regular', 'p04', 'image', 'unknown'],
      ['PNEUMONIA/f.png', 'pneumonia', null, 'image', 'unknown'],
      ['PNEUMONIA/g.png', 'pneumonia', null, 'image', 'unknown'],
      ['PNEUMONIA/p05/h.png', 'pneumonia', 'p05', 'image', 'unknown'],
    ]);
    expect(Object.fromEntries(listing.skipped.map((s) => [s.source, s.reason]))).toEqual({
      // Typed from its bytes, as in the POCUS layout and as predict types files.
      'Healthy/p02/report.txt': 'not a supported image (PNG, JPEG, BMP, WebP, TIFF), video (MP4/MOV, AVI, GIF, MPEG-PS/TS, MKV/WebM) or DICOM file',
      'Other/': 'not a class folder (classes: covid, pneumonia, regular; name folders after them or map them with --class-map)',
      'README.txt': 'not inside a class folder',
      'viral/': 'class viral not in --classes',
    });
    // Frame names are unique and safe (a space became "_", so a hash keeps them apart).
    const stems = listing.items.map((i) => i.frameStem);
    expect(new Set(stems).size).toBe(stems.length);
    expect(stems[2]).toMatch(/^frames\/covid\/p01__exam_2__b_avi-[0-9a-f]{8}$/);
  });

  it('builds: labels, patients kept together across classes, loose files alone with a warning', async () => {
    const out = join(root, 'ds');
    const result = await buildDataset({ source, out, classMap: new Map([['covid', 'COVID-19'], ['regular', 'Healthy']]), fps: 3, maxFrames: 4, size: 16, folds: 2, seed: 0, quiet: true });
    const { rows, info } = openDataset(out);
    // (the manifest keeps times to the millisecond)
    expect(rows).toEqual(result.rows.map((r) => ({ ...r, time: Number(r.time.toFixed(3)) })));
    expect(info.layout).toBe('class-folders');
    expect(info.options).toMatchObject({ classMap: { covid: 'COVID-19', regular: 'Healthy' } });
    const bySource = new Map(rows.map((r) => [r.source, r]));
    expect(bySource.get('COVID-19/p01/exam 2/b.avi')).toMatchObject({ label: 'covid', patient: 'p01', kind: 'video', probe: 'unknown' });
    expect(rows.filter((r) => r.source === 'COVID-19/p01/exam 2/b.avi').map((r) => r.frame)).toEqual([0, 2, 4]);
    expect(bySource.get('Healthy/p01/after.png')).toMatchObject({ label: 'regular', patient: 'p01', kind: 'image' });
    expect(bySource.get('PNEUMONIA/f.png')).toMatchObject({ label: 'pneumonia', patient: 'PNEUMONIA/f.png' });
    // p01 has a covid and a regular source: one patient, one fold.
    expect(new Set(rows.filter((r) => r.patient === 'p01').map((r) => r.fold)).size).toBe(1);
    expect(info.counts.perClass).toEqual({ covid: 6, pneumonia: 3, regular: 3 });
    expect(info.warnings).toEqual([expect.stringMatching(/^3 file\(s\) have no patient folder and no DICOM Patient ID, so each is its own patient .*: COVID-19\/loose.png, PNEUMONIA\/f.png, PNEUMONIA\/g.png$/)]);
    // The manifest reads back (probe "unknown" included) and a re-run reuses everything.
    const again = await buildDataset({ source, out, classMap: new Map([['covid', 'COVID-19'], ['regular', 'Healthy']]), fps: 3, maxFrames: 4, size: 16, folds: 2, seed: 0, quiet: true });
    expect(again.decoded).toEqual([]);
    expect(again.rows).toEqual(result.rows);
  });

  it('refuses an unknown layout with the accepted ones, and a bad --class-map', async () => {
    const odd = join(root, 'odd');
    await png(join(odd, 'scans', 'a.png'), 1);
    await png(join(odd, 'b.png'), 2);
    const attempt = buildDataset({ source: odd, out: join(root, 'odd-ds'), quiet: true });
    await expect(attempt).rejects.toThrow(/no known layout \(it holds b\.png, scans\/\)\. Accepted layouts:/);
    const message = await attempt.catch((e: Error) => e.message);
    for (const layout of ACCEPTED_LAYOUTS) expect(message).toContain(layout);
    expect(() => parseClassMap('covid=A,regular', ['covid', 'regular'])).toThrow(/"regular" is not class=folder/);
    expect(() => parseClassMap('flu=A', ['covid'])).toThrow(/unknown class in --class-map "flu"/);
    expect(() => parseClassMap('pneumonia=A', ['covid', 'regular'])).toThrow(/names pneumonia, which is not in --classes/);
    expect(() => parseClassMap('covid=A,regular=a', ['covid', 'regular'])).toThrow(/gives folder "a" to two classes/);
  });

  it('CLI: --class-map and the warnings are printed', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
    const warn = vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
    try {
      process.exitCode = 0;
      await main(['node', 'pocovid', 'data', 'build', '--source', source, '--out', join(root, 'cli-ds'), '--class-map', 'covid=COVID-19,regular=Healthy', '--size', '16', '--folds', '2', '--quiet']);
    } finally {
      log.mockRestore();
      warn.mockRestore();
    }
    expect(out.join('\n')).toMatch(/wrote 12 frames/);
    expect(out.join('\n')).toContain('skipped Other/: not a class folder');
    expect(err.join('\n')).toMatch(/^warning: 3 file\(s\) have no patient folder/);
  });
});
