// The leakage audit on datasets with planted leaks (a re-encoded copy of a clip under another
// patient, the same file under two names, a patient in two folds, broken frames), its
// perceptual hash, the `data audit` command, and `cv` refusing a leaking dataset unless told.
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { auditDataset, formatAudit } from '../../src/data/audit.js';
import { foldRows } from '../../src/data/folds.js';
import { formatManifest } from '../../src/data/manifest.js';
import { distanceAt, hammingDistance, HASH_BITS, HASH_WORDS, hashGrey, perceptualHash } from '../../src/data/phash.js';
import type { DatasetInfo, ManifestRow } from '../../src/data/types.js';
import { renderPhantomFrame, samplePhantomScene } from '../../src/data/phantom.js';
import { createRng } from '../../src/util/rng.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';
import { tempDir } from './helpers.js';

let root: string;
let cleanup: () => void;
let clean: string;
let clean_rows: ManifestRow[];

async function cli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const spies = [
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' '))),
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' '))),
  ];
  try {
    process.exitCode = 0;
    await main(['node', 'pocovid', ...args]);
    return { out: out.join('\n'), err: err.join('\n'), code: Number(process.exitCode ?? 0) };
  } finally {
    for (const spy of spies) spy.mockRestore();
    process.exitCode = 0;
  }
}

/** Writes the rows as the manifest and dataset.json's frame counts to match, as data build writes both. */
function writeManifest(dir: string, rows: ManifestRow[], options: Record<string, unknown> = {}): void {
  writeFileSync(join(dir, 'manifest.csv'), formatManifest(rows));
  const info = JSON.parse(readFileSync(join(dir, 'dataset.json'), 'utf8')) as DatasetInfo;
  const perClass: Record<string, number> = {};
  const perFold: Record<string, Record<string, number>> = {};
  for (const r of rows) {
    perClass[r.label] = (perClass[r.label] ?? 0) + 1;
    const fold = (perFold[r.fold] ??= {});
    fold[r.label] = (fold[r.label] ?? 0) + 1;
  }
  writeFileSync(join(dir, 'dataset.json'), JSON.stringify({ ...info, options: { ...info.options, ...options }, counts: { ...info.counts, perClass, perFold } }, null, 2));
}

/** A copy of `frame` re-encoded as JPEG (quality 60) and 8% brighter: the same picture to a person. */
async function reencoded(frame: string, out: string): Promise<void> {
  const jpeg = await sharp(frame).linear(1.08, 0).jpeg({ quality: 60 }).toBuffer();
  await sharp(jpeg).png().toFile(out);
}

/** The clean dataset with leaks planted: returns its folder, rows and the fold of the copied clip. */
async function plantLeaks(): Promise<{ dir: string; rows: ManifestRow[]; copyFold: number }> {
  const dir = join(root, 'leaky');
  cpSync(clean, dir, { recursive: true });
  const rows = clean_rows.map((r) => ({ ...r }));
  // 1. covid-0's clip re-encoded, filed as another patient's in the other fold.
  const original = rows.filter((r) => r.patient === 'covid-0');
  const copyFold = 1 - original[0]!.fold;
  for (const r of original) {
    const path = r.path.replace('.png', '_copy.png');
    await reencoded(join(dir, r.path), join(dir, path));
    rows.push({ ...r, path, source: 'pocus_videos/convex/Cov_reupload.mp4', patient: 'uploader-9', fold: copyFold });
  }
  // 2. A patient with a second clip in the other fold.
  await movePatient(dir, rows);
  // 3. One frame corrupt, one missing.
  writeFileSync(join(dir, rows[3]!.path), 'not a png');
  // (a frame number of its own: a strict manifest lists each frame of a source once)
  rows.push({ ...rows[4]!, path: 'frames/gone.png', frame: 999 });
  // 4. The same source bytes under two names in different folds (sources in a folder the audit can find).
  const sources = join(dir, 'src');
  for (const r of rows) {
    mkdirSync(join(sources, r.source, '..'), { recursive: true });
    writeFileSync(join(sources, r.source), `clip of ${r.source}`);
  }
  writeFileSync(join(sources, 'pocus_videos/convex/pneumonia_phantom_2.mp4'), 'clip of pocus_videos/convex/pneumonia_phantom_1.mp4');
  writeManifest(dir, rows, { source: sources });
  return { dir, rows, copyFold };
}

/** Gives patient regular-1 a second clip (new frames of its own) in the other fold. */
async function movePatient(dir: string, rows: ManifestRow[]): Promise<void> {
  const moved = rows.filter((r) => r.patient === 'regular-1');
  const rng = createRng(99);
  const scene = samplePhantomScene('regular', 64, rng);
  for (const [k, r] of moved.entries()) {
    const path = `frames/regular_1_second_${k}.png`;
    await sharp(Buffer.from(renderPhantomFrame(scene, k * 3, rng)), { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(join(dir, path));
    rows.push({ ...r, path, source: 'pocus_videos/convex/regular_second.mp4', fold: 1 - r.fold });
  }
}

let leaky: Awaited<ReturnType<typeof plantLeaks>>;
let patientLeak: string;

beforeAll(async () => {
  ({ dir: root, cleanup } = tempDir('audit'));
  clean = join(root, 'clean');
  clean_rows = await writeTinyDataset(clean, { patientsPerClass: 4, framesPerVideo: 3, folds: 2, size: 64 });
  leaky = await plantLeaks();
  // Only a patient in two folds, every frame readable (cv trains on it).
  patientLeak = join(root, 'patient-leak');
  cpSync(clean, patientLeak, { recursive: true });
  const rows = clean_rows.map((r) => ({ ...r }));
  await movePatient(patientLeak, rows);
  writeManifest(patientLeak, rows);
});
afterAll(() => cleanup());

describe('perceptual hash', () => {
  it('has 255 bits, half of them set, and counts differing bits exactly', () => {
    const grey = Uint8Array.from({ length: 64 * 64 }, (_, i) => (i * 31 + (i >> 6) * 7) % 251);
    const h = hashGrey(grey);
    expect(HASH_BITS).toBe(255);
    const set = Array.from({ length: HASH_BITS }, (_, i) => (h[i >> 5]! >>> (i & 31)) & 1).reduce((a: number, b) => a + b, 0);
    expect(set).toBe(127); // strictly above the median of 255 values
    const other = Uint32Array.from(h);
    other[0]! ^= 0b1011;
    other[7]! ^= 1 << 30;
    expect(hammingDistance(h, other)).toBe(4);
    const packed = new Uint32Array(2 * HASH_WORDS);
    packed.set(h, 0);
    packed.set(other, HASH_WORDS);
    expect(distanceAt(packed, 0, 1)).toBe(4);
  });

  it('sees a re-encoded, brightened or slightly shifted frame as the same picture, another patient as another', async () => {
    const frame = join(clean, clean_rows[0]!.path);
    const base = await perceptualHash(readFileSync(frame));
    expect(hammingDistance(base, await perceptualHash(await sharp(frame).jpeg({ quality: 40 }).toBuffer()))).toBeLessThanOrEqual(8);
    expect(hammingDistance(base, await perceptualHash(await sharp(frame).linear(1.15, 10).png().toBuffer()))).toBeLessThanOrEqual(20);
    const shifted = await sharp(frame).extract({ left: 1, top: 0, width: 63, height: 64 }).resize(64, 64, { fit: 'fill' }).png().toBuffer();
    expect(hammingDistance(base, await perceptualHash(shifted))).toBeLessThanOrEqual(32);
    const otherPatient = clean_rows.find((r) => r.label === clean_rows[0]!.label && r.patient !== clean_rows[0]!.patient)!;
    expect(hammingDistance(base, await perceptualHash(readFileSync(join(clean, otherPatient.path))))).toBeGreaterThan(48);
  });
});

describe('auditDataset', () => {
  it('finds nothing in a clean dataset, and counts classes, sources and patients per fold', async () => {
    const report = await auditDataset(clean, { quiet: true });
    expect(report.leaking).toBe(false);
    expect(report.nearDuplicates).toEqual([]);
    expect(report.similarSources).toEqual([]);
    expect(report.patientsInSeveralFolds).toEqual([]);
    expect(report.unreadable).toEqual([]);
    expect(report.sameFile.checked).toBe(false);
    expect(report.totals).toEqual({ frames: 36, sources: 12, patients: 12, folds: 2 });
    expect(report.perFold).toEqual([
      { fold: 0, frames: { covid: 6, pneumonia: 6, regular: 6 }, sources: 6, patients: 6 },
      { fold: 1, frames: { covid: 6, pneumonia: 6, regular: 6 }, sources: 6, patients: 6 },
    ]);
    expect(formatAudit(report)).toMatch(/no leakage found across folds$/);
  });

  it('finds every planted leak, and only those', async () => {
    const { dir, rows, copyFold } = leaky;
    const report = await auditDataset(dir, { quiet: true });
    expect(report.leaking).toBe(true);
    expect(report.nearDuplicates).toEqual([
      expect.objectContaining({
        a: expect.objectContaining({ source: 'pocus_videos/convex/Cov_reupload.mp4', patient: 'uploader-9', fold: copyFold }),
        b: expect.objectContaining({ source: 'pocus_videos/convex/covid_phantom_0.mp4', patient: 'covid-0' }),
        crossFold: true,
      }),
    ]);
    expect(report.nearDuplicates[0]!.minDistance).toBeLessThanOrEqual(20);
    expect(report.nearDuplicates[0]!.framePairs).toBeGreaterThanOrEqual(3);
    expect(report.patientsInSeveralFolds).toEqual([{ patient: 'regular-1', folds: [0, 1], sources: 2 }]);
    expect(report.sameFile.groups).toEqual([
      { sha256: expect.stringMatching(/^[0-9a-f]{64}$/), crossFold: true, sources: [
        expect.objectContaining({ source: 'pocus_videos/convex/pneumonia_phantom_1.mp4' }),
        expect.objectContaining({ source: 'pocus_videos/convex/pneumonia_phantom_2.mp4' }),
      ] },
    ]);
    expect(report.unreadable.map((u) => [u.path, u.reason.split(' (')[0]])).toEqual([['frames/gone.png', 'missing'], [rows[3]!.path, 'cannot decode']]);
    expect(report.leaks).toEqual({ patients: 1, sources: 0, sameFile: 1, nearDuplicates: 1 });
    const text = formatAudit(report);
    expect(text).toContain(`ACROSS FOLDS fold ${copyFold} pocus_videos/convex/Cov_reupload.mp4 ~ fold ${1 - copyFold} pocus_videos/convex/covid_phantom_0.mp4: `);
    expect(text).toMatch(/LEAKAGE: 1 patient\(s\) in several folds, 1 file\(s\) copied across folds, 1 near-duplicate source pair\(s\) across folds$/);

    // A stricter threshold than the copy's distance finds no near-duplicate; a looser "similar"
    // check lists the copy for a person to look at instead.
    const strict = await auditDataset(dir, { quiet: true, maxDistance: 0 });
    expect(strict.nearDuplicates).toEqual([]);
    expect(strict.similarSources).toEqual([expect.objectContaining({ a: expect.objectContaining({ source: 'pocus_videos/convex/Cov_reupload.mp4' }), share: 1, crossFold: true })]);
    expect(strict.leaks.nearDuplicates).toBe(0);
  });

  it('data audit: writes the report, prints it, exits 1 on leakage and 0 otherwise', async () => {
    const leaky = await cli(['data', 'audit', join(root, 'leaky'), '--quiet']);
    expect(leaky.code).toBe(1);
    expect(leaky.out).toMatch(/^audit of .*: 43 frames, 14 sources, 13 patients, 2 folds/);
    expect(JSON.parse(readFileSync(join(root, 'leaky', 'audit.json'), 'utf8')).leaking).toBe(true);
    const ok = await cli(['data', 'audit', clean, '--quiet', '--json', '--out', join(root, 'clean-audit.json')]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out).leaking).toBe(false);
    expect(JSON.parse(readFileSync(join(root, 'clean-audit.json'), 'utf8')).options).toMatchObject({ maxDistance: 32, hashBits: 255 });
    expect((await cli(['data', 'audit', clean, '--max-distance', '300'])).code).toBe(1);
  });
});

describe('cv and a leaking dataset', () => {
  const cvArgs = (data: string, out: string) => ['cv', '--data', data, '--out', out, '--model', 'grayscale_cnn', '--input-size', '16', '--epochs', '1', '--batch-size', '8', '--views', '1', '--runtime', 'tfjs', '--folds', '0', '--validation-fraction', '0.5', '--quiet'];

  it('refuses it before training, naming what leaks', async () => {
    const out = join(root, 'cv-refused');
    const run = await cli(cvArgs(patientLeak, out));
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/the folds leak, so cross-validation would report optimistic results/);
    expect(run.err).toContain('patient regular-1: folds 0, 1');
    expect(run.err).toContain('--allow-leakage');
    expect(JSON.parse(readFileSync(join(out, 'audit.json'), 'utf8'))).toMatchObject({ leaking: true, allowLeakage: false });
    expect(() => readFileSync(join(out, 'config.json'))).toThrow();
  });

  it('runs with --allow-leakage, loudly, and records it', async () => {
    const out = join(root, 'cv-allowed');
    const run = await cli([...cvArgs(patientLeak, out), '--allow-leakage']);
    expect(run.code).toBe(0);
    expect(run.err).toMatch(/WARNING: --allow-leakage: the folds of .* LEAK; every result of this run is optimistic/);
    expect(JSON.parse(readFileSync(join(out, 'audit.json'), 'utf8'))).toMatchObject({ leaking: true, allowLeakage: true });
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).kind).toBe('cv');
  });

  it('with --fold-seeds, audits every fold assignment before any fold trains', async () => {
    // covid-0's clip re-encoded as another patient's, in the same fold: the dataset's own folds do not leak.
    const dir = join(root, 'copy-same-fold');
    cpSync(clean, dir, { recursive: true });
    const rows = clean_rows.map((r) => ({ ...r }));
    for (const r of clean_rows.filter((r) => r.patient === 'covid-0')) {
      const path = r.path.replace('.png', '_copy.png');
      await reencoded(join(dir, r.path), join(dir, path));
      rows.push({ ...r, path, source: 'pocus_videos/convex/Cov_reupload.mp4', patient: 'uploader-9' });
    }
    writeManifest(dir, rows);
    expect((await auditDataset(dir, { quiet: true })).leaking).toBe(false);
    // A fold seed (data refold's rule) that puts the copy and its original in different folds.
    const foldOf = (seed: number, patient: string) => foldRows(rows, 2, seed, 'patient').find((r) => r.patient === patient)!.fold;
    const seed = Array.from({ length: 30 }, (_, k) => k + 1).find((k) => foldOf(k, 'covid-0') !== foldOf(k, 'uploader-9'))!;
    expect(seed).toBeGreaterThan(0);
    const out = join(root, 'cv-seeds');
    const run = await cli([...cvArgs(dir, out), '--fold-seeds', `0,${seed}`]);
    expect(run.code).toBe(2);
    expect(run.err).toContain(`${join(out, 'datasets', `seed-${seed}`)}: the folds leak`);
    expect(run.err).toContain('pocus_videos/convex/Cov_reupload.mp4');
    expect(JSON.parse(readFileSync(join(out, 'seed-0', 'audit.json'), 'utf8'))).toMatchObject({ leaking: false });
    expect(JSON.parse(readFileSync(join(out, `seed-${seed}`, 'audit.json'), 'utf8'))).toMatchObject({ leaking: true, allowLeakage: false });
    // Refused before the first fold assignment trained.
    expect(existsSync(join(out, 'seed-0', 'fold-0'))).toBe(false);
    expect(existsSync(join(out, 'seed-0', 'config.json'))).toBe(false);
  });
});
