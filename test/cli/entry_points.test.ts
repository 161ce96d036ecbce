// The commands a user types, run as the user runs them: bin/pocovid.js in a child process (it runs
// dist/, so `npm run build` first; npm ci does it). One chain on a small SYNTHETIC phantom:
// data phantom → data build → data refold → train → cv, and the guard fitted and evaluated on it
// (phantom frames it never saw must get through, pictures that are not ultrasound must not); the
// demo has a file of its own (demo.test.ts), so the two run side by side. Each step checks what it wrote against what it was asked for, so
// an option the CLI drops or a step that writes the wrong thing fails here.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataset } from '../../src/data/dataset.js';
import { renderPhantomFrame, samplePhantomScene } from '../../src/data/phantom.js';
import type { ManifestRow } from '../../src/data/types.js';
import { readPredictionsCsv } from '../../src/eval/csv.js';
import type { GuardEvaluation } from '../../src/guard/evaluate.js';
import { checkFrame, isGuardStats } from '../../src/guard/guard.js';
import { decodeImage } from '../../src/data/image.js';
import { createRng } from '../../src/util/rng.js';
import { runCli } from '../helpers/cli_process.js';

let root: string;
let cache: string;
const path = (...parts: string[]) => join(root, ...parts);
const json = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;
const lines = (file: string): string[] => readFileSync(file, 'utf8').trim().split('\n');

async function pocovid(...args: string[]): Promise<string> {
  const { code, output } = await runCli(args, { cache, cwd: root });
  expect(code, `pocovid ${args.join(' ')}:\n${output}`).toBe(0);
  return output;
}

/** Each patient's folds in a manifest (every patient must have exactly one). */
function patientFolds(rows: readonly ManifestRow[]): Map<string, Set<number>> {
  const folds = new Map<string, Set<number>>();
  for (const row of rows) folds.set(row.patient, (folds.get(row.patient) ?? new Set()).add(row.fold));
  return folds;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'pocovid-cli-'));
  cache = path('cache');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('pocovid data, train, cv and guard through bin/pocovid.js', () => {
  it('data phantom writes the POCUS layout it was asked for, marked synthetic', async () => {
    await pocovid('data', 'phantom', '--out', 'phantom', '--per-class', '6', '--images-per-class', '1', '--size', '96', '--frames', '3', '--seed', '2', '--quiet');
    const videos = readdirSync(path('phantom', 'pocus_videos', 'convex')).sort();
    expect(videos).toHaveLength(18);
    for (const prefix of ['Cov_', 'Pneu_', 'Reg_']) expect(videos.filter((v) => v.startsWith(prefix))).toHaveLength(6);
    expect(readdirSync(path('phantom', 'pocus_images', 'convex')).sort()).toEqual(['Cov_phantom_img_001.png', 'Pneu_phantom_img_001.png', 'Reg_phantom_img_001.png']);
    const meta = json<Record<string, unknown>>(path('phantom', 'phantom.json'));
    expect(meta).toMatchObject({ synthetic: true, seed: 2, perClass: 6, imagesPerClass: 1, size: 96, frames: 3 });
    // One metadata row per file; every row says it is synthetic.
    const metadata = lines(path('phantom', 'dataset_metadata.csv')).slice(1);
    expect(metadata).toHaveLength(21);
    for (const row of metadata) expect(row).toContain('SYNTHETIC');
    const image = await sharp(path('phantom', 'pocus_images', 'convex', 'Cov_phantom_img_001.png')).metadata();
    expect([image.width, image.height]).toEqual([96, 96]);
  });

  it('data build decodes every source into frames of the asked size, each patient in one of the asked folds', async () => {
    await pocovid('data', 'build', '--source', 'phantom', '--out', 'data', '--size', '96', '--folds', '3', '--seed', '1', '--quiet');
    const { info, rows } = openDataset(path('data'));
    expect(info.folds).toBe(3);
    expect(info.options).toMatchObject({ size: 96, folds: 3, seed: 1 });
    // 18 videos of 3 frames and 3 images; no source skipped.
    expect(new Set(rows.map((r) => r.source)).size).toBe(21);
    expect(rows.filter((r) => r.kind === 'image')).toHaveLength(3);
    expect(rows.filter((r) => r.kind === 'video').length).toBeGreaterThanOrEqual(18 * 2);
    expect(info.skipped).toEqual([]);
    for (const [patient, folds] of patientFolds(rows)) expect([...folds], patient).toHaveLength(1);
    expect(new Set(rows.map((r) => r.fold))).toEqual(new Set([0, 1, 2]));
    const frame = await sharp(path('data', rows[0]!.path)).metadata();
    expect([frame.width, frame.height]).toEqual([96, 96]);
  });

  it('data refold writes the same frames in other folds, patients kept whole, frames linked', async () => {
    await pocovid('data', 'refold', 'data', '--out', 'refold', '--seed', '7');
    const before = openDataset(path('data')).rows;
    const after = openDataset(path('refold')).rows;
    const key = (r: ManifestRow) => [r.path, r.label, r.source, r.patient, r.frame].join('|');
    expect(after.map(key).sort()).toEqual(before.map(key).sort());
    for (const [patient, folds] of patientFolds(after)) expect([...folds], patient).toHaveLength(1);
    const foldOf = (rows: readonly ManifestRow[]) => new Map(rows.map((r) => [r.patient, r.fold]));
    expect(foldOf(after)).not.toEqual(foldOf(before));
    expect(openDataset(path('refold')).info.options).toMatchObject({ seed: 7, refoldedFromSeed: 1 });
    expect(lstatSync(path('refold', 'frames')).isSymbolicLink()).toBe(true);
    expect(realpathSync(path('refold', 'frames'))).toBe(realpathSync(path('data', 'frames')));
  });

  it('train runs the fold with the options given on the command line and predicts its test fold', async () => {
    await pocovid('train', '--data', 'data', '--model', 'grayscale_cnn', '--input-size', '32', '--fold', '1', '--epochs', '2', '--batch-size', '8', '--lr', '0.002', '--seed', '4', '--patience', '5', '--class-weights', 'balanced', '--out', 'train', '--quiet');
    const config = json<Record<string, unknown>>(path('train', 'config.json'));
    expect(config).toMatchObject({ model: 'grayscale_cnn', fold: 1, epochs: 2, batchSize: 8, lr: 0.002, seed: 4, earlyStoppingPatience: 5, classWeights: 'balanced', inputSize: [32, 32] });
    expect(lines(path('train', 'history.jsonl')).map((l) => (JSON.parse(l) as { epoch: number }).epoch)).toEqual([0, 1]);
    const testRows = openDataset(path('data')).rows.filter((r) => r.fold === 1);
    const predictions = readPredictionsCsv(path('train', 'predictions.csv')).rows;
    expect(predictions.map((p) => p.path).sort()).toEqual(testRows.map((r) => r.path).sort());
    for (const p of predictions) {
      expect(p.fold).toBe(1);
      expect(p.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    // A bad value is refused, naming the option; nothing is trained.
    const bad = await runCli(['train', '--data', 'data', '--model', 'grayscale_cnn', '--epochs', 'two', '--out', 'bad'], { cache, cwd: root });
    expect(bad.code).not.toBe(0);
    expect(bad.output).toMatch(/--epochs/);
    expect(existsSync(path('bad'))).toBe(false);
  });

  it('cv trains every fold and pools one prediction per frame, each from the fold that held it out', async () => {
    await pocovid('cv', '--data', 'data', '--model', 'grayscale_cnn', '--input-size', '32', '--epochs', '1', '--batch-size', '8', '--seed', '4', '--no-refit', '--out', 'cv', '--quiet');
    const rows = openDataset(path('data')).rows;
    const predictions = readPredictionsCsv(path('cv', 'predictions.csv')).rows;
    expect(predictions.map((p) => p.path).sort()).toEqual(rows.map((r) => r.path).sort());
    const foldOf = new Map(rows.map((r) => [r.path, r.fold]));
    for (const p of predictions) expect(p.fold, p.path).toBe(foldOf.get(p.path));
    expect(json<{ epochs: number }>(path('cv', 'config.json')).epochs).toBe(1);
    expect(existsSync(path('cv', 'refit'))).toBe(false);
    expect(readFileSync(path('cv', 'report.md'), 'utf8')).toMatch(/balanced accuracy/i);
  });

  it('guard fit and guard eval: unseen phantom frames get through, pictures that are not ultrasound do not', async () => {
    await pocovid('guard', 'fit', '--data', 'data', '--out', 'guard.json');
    const guard = json<unknown>(path('guard.json'));
    if (!isGuardStats(guard)) throw new Error(`guard fit wrote something that is not a guard: ${JSON.stringify(guard).slice(0, 200)}`);
    expect(guard.fittedOn).toBe(openDataset(path('data')).rows.length);

    // Pictures the test writes: phantom frames from scenes the guard never saw (another seed), and
    // pictures that are not ultrasound — a photo-like colour scene, a text document, a line drawing.
    const photos = path('pictures');
    mkdirSync(photos);
    const rng = createRng(99);
    const unseen: string[] = [];
    for (const label of ['covid', 'pneumonia', 'regular'] as const) {
      const sceneRng = rng.fork();
      const frame = renderPhantomFrame(samplePhantomScene(label, 96, sceneRng), 0, sceneRng);
      const name = `phantom_${label}.png`;
      await sharp(Buffer.from(frame), { raw: { width: 96, height: 96, channels: 3 } }).png().toFile(join(photos, name));
      unseen.push(name);
    }
    const size = 160;
    const scene = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const sky = y < size / 2;
        const noise = rng.int(20);
        scene.set(sky ? [90 + y + noise, 150 + y / 2 + noise, 230] : [60 + noise, 120 + (x % 30) + noise, 40 + noise], (y * size + x) * 3);
      }
    }
    await sharp(Buffer.from(scene), { raw: { width: size, height: size, channels: 3 } }).jpeg().toFile(join(photos, 'landscape.jpg'));
    const text = Array.from({ length: 8 }, (_, i) => `<text x="8" y="${20 + i * 18}" font-family="DejaVu Sans" font-size="13">Line ${i + 1}: patient letter, page ${i}</text>`).join('');
    await sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="white"/>${text}</svg>`)).png().toFile(join(photos, 'document.png'));
    await sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="#f4f0e0"/><circle cx="80" cy="70" r="40" fill="none" stroke="black" stroke-width="4"/><path d="M20 150 L80 110 L140 150" stroke="#c03030" stroke-width="6" fill="none"/></svg>`)).png().toFile(join(photos, 'drawing.png'));

    // The fitted guard file, read back, lets the unseen phantom frames through and stops the rest.
    for (const name of [...unseen, 'landscape.jpg', 'document.png', 'drawing.png']) {
      const image = await decodeImage(join(photos, name));
      expect(checkFrame(image.rgb, image.width, image.height, guard).flagged, name).toBe(!unseen.includes(name));
    }

    await pocovid('guard', 'eval', '--data', 'data', '--photos', 'pictures', '--json', 'guard_eval.json');
    const evaluation = json<GuardEvaluation>(path('guard_eval.json'));
    expect(evaluation.realFrames).toBe(openDataset(path('data')).rows.length);
    expect(Object.values(evaluation.realFlaggedPerFold).reduce((n, f) => n + f.frames, 0)).toBe(evaluation.realFrames);
    expect(evaluation.realFlaggedRate).toBeLessThanOrEqual(0.1);
    const pictures = evaluation.negatives.filter((n) => n.kind.startsWith('photographs'));
    expect(pictures.map((n) => n.kind)).toEqual(['photographs and wallpapers (colour)', 'photographs and wallpapers (converted to grey)']);
    for (const kind of pictures) {
      expect(kind.total, kind.kind).toBe(6);
      expect(kind.passedNames.sort(), kind.kind).toEqual([...unseen].sort());
    }
    for (const kind of evaluation.negatives.filter((n) => n.kind.startsWith('synthetic'))) expect(kind.passed, kind.kind).toBe(0);
  });
});
