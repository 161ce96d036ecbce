// Fault injection on `data build` and on what decides whether a file is accepted: more folds than
// patients, a frame PNG truncated after a build, an oversized image, a file whose name lies about
// its type, and ONNX Runtime's stray log files; in the POCUS layout and in class folders with
// DICOM files, whose patients are known only once they are decoded. Each case checks the answer
// AND that what was written before (an earlier manifest, intact frames) is kept.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataset } from '../../src/data/build.js';
import { openDataset } from '../../src/data/dataset.js';
import { initEngine } from '../../src/engine/index.js';
import { saveModelDir } from '../../src/infer/model_dir.js';
import { decodeImageTo } from '../../src/infer/media.js';
import { createPipeline } from '../../src/infer/pipeline.js';
import { timing, writeDicom } from '../helpers/dicom_writer.js';
import { writePng } from '../infer/fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../infer/tiny_model.js';

let root: string;

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-fault-data-'));
  process.env['POCOVID_CACHE'] = join(root, 'cache');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A POCUS-layout folder of still images, one patient each (no dataset_metadata.csv). */
async function imageSource(name: string, files: string[]): Promise<string> {
  const dir = join(root, name);
  mkdirSync(join(dir, 'pocus_images', 'convex'), { recursive: true });
  for (const [i, file] of files.entries()) await writePng(join(dir, 'pocus_images', 'convex', file), 40, 40, i);
  return dir;
}

const SIX = ['Cov_a.png', 'Cov_b.png', 'Pne_a.png', 'Pne_b.png', 'Reg_a.png', 'Reg_b.png'];

/** A class-folder source of 4-frame DICOM cine loops without an extension (as PACS exports them), with their Patient IDs. */
async function dicomSource(name: string, files: [rel: string, patientId: string][]): Promise<string> {
  const dir = join(root, name);
  for (const [i, [rel, patientId]] of files.entries()) {
    const frames = [0, 1, 2, 3].map((k) => Uint8Array.from({ length: 24 * 24 }, (_, p) => (p * 7 + k * 29 + i * 53) % 256));
    const bytes = await writeDicom({ syntax: 'explicit-le', rows: 24, columns: 24, frames, extra: [timing.frameTime(100)], identifying: { PatientID: patientId } });
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), bytes);
  }
  return dir;
}

describe('data build --folds', () => {
  it('refuses more folds than patient groups before decoding anything, and keeps an earlier manifest', async () => {
    const source = await imageSource('few-patients', SIX);
    const out = join(root, 'ds-few');
    mkdirSync(out);
    writeFileSync(join(out, 'manifest.csv'), 'an earlier manifest\n');
    await expect(buildDataset({ source, out, folds: 99, size: 32, quiet: true })).rejects.toThrow(
      '--folds 99, but there are only 6 patient groups (dataset_metadata.csv "Patient ID", else a DICOM file\'s Patient ID; a source without either is its own patient): use --folds 6 or fewer',
    );
    await expect(buildDataset({ source, out, folds: 9, size: 32, quiet: true, groupBy: 'video' })).rejects.toThrow('--folds 9, but there are only 6 videos and images (--group-by video): use --folds 6 or fewer');
    expect(readFileSync(join(out, 'manifest.csv'), 'utf8')).toBe('an earlier manifest\n');
    expect(existsSync(join(out, 'frames'))).toBe(false);
  });

  it('class folders: refused before decoding by the files (a DICOM file counts alone), then by the patients its Patient ID gives', async () => {
    // Three files, two patients: only decoding shows that covid/IM1 and covid/IM2 are one patient.
    const source = await dicomSource('dicom-folds', [['covid/IM1', 'MRN-1'], ['covid/IM2', 'MRN-1'], ['regular/IM3', 'MRN-2']]);
    const out = join(root, 'ds-dicom-folds');
    await expect(buildDataset({ source, out, folds: 4, size: 16, quiet: true })).rejects.toThrow(
      "--folds 4, but there are only 3 patient groups (patient folders DIR/<class>/<patient>/, else a DICOM file's Patient ID; a source without either is its own patient): use --folds 3 or fewer",
    );
    // Nothing decoded and no salt made for a build refused up front.
    expect(existsSync(join(out, 'frames'))).toBe(false);
    expect(existsSync(join(out, 'patient-salt'))).toBe(false);
    await expect(buildDataset({ source, out, folds: 3, size: 16, quiet: true })).rejects.toThrow(
      "--folds 3, but there are only 2 patient groups (patient folders DIR/<class>/<patient>/, else a DICOM file's Patient ID; a source without either is its own patient): use --folds 2 or fewer",
    );
    expect(existsSync(join(out, 'manifest.csv'))).toBe(false);
    // Two folds fit, and the frames decoded by the refused run are reused.
    const built = await buildDataset({ source, out, folds: 2, size: 16, quiet: true });
    expect(built.reused).toHaveLength(3);
    expect(new Set(built.rows.map((r) => r.patient)).size).toBe(2);
  });

  it('counts again after sources fail to decode', async () => {
    const source = await imageSource('one-broken', ['Cov_a.png', 'Pne_a.png', 'Reg_a.png']);
    truncateSync(join(source, 'pocus_images', 'convex', 'Reg_a.png'), 60);
    await expect(buildDataset({ source, out: join(root, 'ds-broken'), folds: 3, size: 32, quiet: true })).rejects.toThrow(
      /^--folds 3, but there are only 2 patient groups .* after 1 source\(s\) were skipped: use --folds 2 or fewer$/,
    );
  });
});

describe('data build reusing frames', () => {
  it('decodes a source again when one of its frames was truncated, instead of reusing the damaged file', async () => {
    const source = await imageSource('reuse', SIX);
    const out = join(root, 'ds-reuse');
    const first = await buildDataset({ source, out, folds: 2, size: 32, quiet: true });
    expect(first.decoded).toHaveLength(6);
    const victim = first.rows.find((r) => r.source.endsWith('Pne_b.png'))!;
    const frame = join(out, victim.path);
    const intact = readFileSync(frame);
    truncateSync(frame, 40);
    const again = await buildDataset({ source, out, folds: 2, size: 32, quiet: true });
    expect(again.decoded).toEqual([victim.source]);
    expect(again.reused).toHaveLength(5);
    expect(readFileSync(frame).equals(intact)).toBe(true);
    expect(openDataset(out).rows).toEqual(first.rows);
  });
});

describe('data build reusing DICOM frames from class folders', () => {
  it('decodes a DICOM cine loop again when one of its frames was truncated; its pseudonym and rows stay the same', async () => {
    const source = await dicomSource('dicom-reuse', [['covid/IM1', 'MRN-1'], ['covid/IM2', 'MRN-2'], ['regular/IM3', 'MRN-3'], ['regular/IM4', 'MRN-4']]);
    const out = join(root, 'ds-dicom-reuse');
    const first = await buildDataset({ source, out, folds: 2, fps: 10, maxFrames: 4, size: 16, quiet: true });
    expect(first.decoded).toHaveLength(4);
    expect(first.rows).toHaveLength(16);
    expect(first.rows.every((r) => /^dcm-[0-9a-f]{16}$/.test(r.patient) && r.kind === 'video' && r.probe === 'unknown')).toBe(true);
    const victim = first.rows.find((r) => r.source === 'regular/IM3' && r.frame === 2)!;
    const frame = join(out, victim.path);
    const intact = readFileSync(frame);
    truncateSync(frame, 40);
    const again = await buildDataset({ source, out, folds: 2, fps: 10, maxFrames: 4, size: 16, quiet: true });
    expect(again.decoded).toEqual(['regular/IM3']);
    expect(again.reused).toHaveLength(3);
    expect(readFileSync(frame).equals(intact)).toBe(true);
    expect(openDataset(out).rows).toEqual(first.rows.map((r) => ({ ...r, time: Number(r.time.toFixed(3)) })));
  });
});

describe('one acceptance rule for predict and data build', () => {
  it('an image over the pixel limit is refused by both, with the same words', async () => {
    const source = await imageSource('huge', SIX.slice(0, 5));
    const huge = join(source, 'pocus_images', 'convex', 'Reg_huge.png');
    await sharp({ create: { width: 9000, height: 9000, channels: 3, background: { r: 20, g: 20, b: 20 } } }).png({ compressionLevel: 1 }).toFile(huge);
    const problem = 'image of 9000×9000 pixels is over the limit of 67,108,864 pixels (8192×8192)';
    await expect(decodeImageTo(huge, 32, 32)).rejects.toThrow(`${huge}: ${problem}`);
    const built = await buildDataset({ source, out: join(root, 'ds-huge'), folds: 2, size: 32, quiet: true });
    expect(built.info.skipped).toContainEqual({ source: 'pocus_images/convex/Reg_huge.png', reason: problem });
  });

  it('a file is what its bytes say, whatever its name: both take a PNG named .mp4, and a BMP', async () => {
    const source = await imageSource('renamed', SIX.slice(0, 5));
    const misnamed = join(source, 'pocus_images', 'convex', 'Reg_b.mp4');
    await writePng(misnamed, 40, 40, 9);
    const bmp = join(source, 'pocus_images', 'convex', 'Cov_c.bmp');
    execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-i', join(source, 'pocus_images', 'convex', 'Cov_a.png'), bmp]);
    const built = await buildDataset({ source, out: join(root, 'ds-renamed'), folds: 2, size: 32, quiet: true });
    expect(built.info.skipped).toEqual([]);
    const rowOf = (name: string) => built.rows.find((r) => r.source.endsWith(name))!;
    expect([rowOf('Reg_b.mp4').kind, rowOf('Cov_c.bmp').kind]).toEqual(['image', 'image']);
    const model = join(root, 'model');
    await saveModelDir(model, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(5)] });
    const pipeline = await createPipeline(model, { guard: false });
    try {
      expect((await pipeline.predictFile(misnamed)).kind).toBe('image');
      expect((await pipeline.predictFile(bmp)).kind).toBe('image');
    } finally {
      await pipeline.dispose();
    }
  });
});

describe('class folders: a file is what its bytes say', () => {
  it('takes a PNG named .mp4, an extension-less PNG and a BMP as images, and skips text named .png with the reason', async () => {
    const dir = join(root, 'own-renamed');
    for (const folder of ['covid/p1', 'covid/p2', 'regular/p3', 'regular/p4']) mkdirSync(join(dir, folder), { recursive: true });
    await writePng(join(dir, 'covid', 'p1', 'scan.mp4'), 40, 40, 1);
    await writePng(join(dir, 'covid', 'p2', 'IM0001'), 40, 40, 2);
    await writePng(join(dir, 'regular', 'p3', 'a.png'), 40, 40, 3);
    execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-i', join(dir, 'regular', 'p3', 'a.png'), join(dir, 'regular', 'p4', 'b.bmp')]);
    writeFileSync(join(dir, 'regular', 'p4', 'notes.png'), 'not an image at all');
    const built = await buildDataset({ source: dir, out: join(root, 'ds-own-renamed'), folds: 2, size: 32, quiet: true });
    expect(built.info.skipped).toEqual([
      { source: 'regular/p4/notes.png', reason: 'not a supported image (PNG, JPEG, BMP, WebP, TIFF), video (MP4/MOV, AVI, GIF, MPEG-PS/TS, MKV/WebM) or DICOM file' },
    ]);
    expect(built.rows.map((r) => [r.source, r.kind, r.patient])).toEqual([
      ['covid/p1/scan.mp4', 'image', 'p1'],
      ['covid/p2/IM0001', 'image', 'p2'],
      ['regular/p3/a.png', 'image', 'p3'],
      ['regular/p4/b.bmp', 'image', 'p4'],
    ]);
  });
});

describe('ONNX Runtime', () => {
  it('leaves no /tmp/mat-debug-<pid>.log behind', () => {
    // A process of its own: the file is made once per process, when ORT starts its environment.
    const script = `
      const { createOrtSession } = await import(${JSON.stringify(new URL('../../src/onnx/runtime.ts', import.meta.url).pathname)});
      const { modelToOnnx } = await import(${JSON.stringify(new URL('../../src/onnx/export.ts', import.meta.url).pathname)});
      const { tinyModel } = await import(${JSON.stringify(new URL('../infer/tiny_model.ts', import.meta.url).pathname)});
      const { initEngine } = await import(${JSON.stringify(new URL('../../src/engine/index.ts', import.meta.url).pathname)});
      await initEngine();
      await createOrtSession(modelToOnnx(tinyModel(1)).bytes);
      console.log(process.pid);
    `;
    const env: NodeJS.ProcessEnv = { ...process.env, POCOVID_CACHE: join(root, 'cache') };
    delete env['ORT_DISABLE_TELEMETRY'];
    const file = join(root, 'ort-probe.mts');
    writeFileSync(file, script);
    const child = spawnSync(process.execPath, ['--import', 'tsx', file], { env, encoding: 'utf8', timeout: 120_000 });
    expect(child.status, child.stderr).toBe(0);
    const pid = child.stdout.trim().split('\n').at(-1)!;
    expect(pid).toMatch(/^\d+$/);
    expect(existsSync(`/tmp/mat-debug-${pid}.log`)).toBe(false);
  });
});
