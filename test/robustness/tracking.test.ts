// What keeps a brittle model from going unnoticed: `robustness` run on two hand-built phantom
// "runs" (a model per fold, each with the predictions.csv of its test fold). One model is made
// deliberately sensitive to a one-grey-level change (it reads the black corner outside the sector
// with a threshold at 0.1 grey level); the other reads the middle of the sector with a clear margin.
// The first must flip under ±1 grey level of noise and miss the targets; the second must not.
import { clipInputs, preprocessorFor } from '../../src/models/preprocess.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, readImageAsInput } from '../../src/data/image.js';
import type { ManifestRow } from '../../src/data/types.js';
import { initEngine, tf } from '../../src/engine/index.js';
import { readPredictionsCsv, writePredictionsCsv } from '../../src/eval/csv.js';
import { argMax } from '../../src/decision/combine.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import type { PretrainedCfg } from '../../src/models/types.js';
import { runRobustness } from '../../src/robustness/index.js';
import { clipToInputs, measureRobustness } from '../../src/robustness/measure.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

const SIZE = 40;
const CLASSES = ['covid', 'pneumonia', 'regular'];
/** The top corners of every phantom frame lie outside the sector: exactly black. */
const CORNER = 5;
let root: string;
let data: string;
let rows: ManifestRow[];
const savedCache = process.env['POCOVID_CACHE'];

const cfg = (size = SIZE): PretrainedCfg => ({
  id: 'robustness.test',
  inputSize: [size, size],
  channels: 3,
  channelOrder: 'rgb',
  mean: [0, 0, 0],
  std: [1, 1, 1],
  camLayer: 'dense',
  classifier: 'dense',
  featureLayer: 'flat',
  sources: [],
});

/** Flatten → Dense(3, softmax) with the given kernel column 0 and biases; columns 1 and 2 are zero. */
function linearModel(column0: Float32Array, bias: [number, number, number]): tfl.LayersModel {
  const input = tfl.input({ shape: [SIZE, SIZE, 3] });
  const flat = tfl.layers.flatten({ name: 'flat' }).apply(input) as tfl.SymbolicTensor;
  const dense = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'dense' });
  const model = tfl.model({ inputs: input, outputs: dense.apply(flat) as tfl.SymbolicTensor });
  const kernel = new Float32Array(SIZE * SIZE * 3 * 3);
  column0.forEach((w, i) => (kernel[i * 3] = w));
  dense.setWeights([tf.tensor2d(kernel, [SIZE * SIZE * 3, 3]), tf.tensor1d(bias)]);
  return model;
}

/** The red value of each pixel in the x, y box, as kernel entries of weight `w` each. */
function box(x0: number, y0: number, side: number, w: number): Float32Array {
  const column = new Float32Array(SIZE * SIZE * 3);
  for (let y = y0; y < y0 + side; y++) for (let x = x0; x < x0 + side; x++) column[(y * SIZE + x) * 3] = w;
  return column;
}

/**
 * Class 0 when the mean of the two top corners exceeds 0.1 grey level, else class 1, with logits
 * of ±10 and more: the clean corners are exactly black, and ±1 noise lifts a third of their pixels to 1.
 */
function sensitiveModel(): tfl.LayersModel {
  const w = (100 * 255) / (2 * CORNER * CORNER);
  const right = box(SIZE - CORNER, 0, CORNER, w);
  const corners = box(0, 0, CORNER, w).map((v, i) => v + right[i]!);
  return linearModel(corners, [-100 * 0.1, 0, -10]);
}

/** Class 0 when the middle of the sector is brighter than `threshold` (0..1), with 50 logits per unit. */
const insensitiveModel = (threshold: number): tfl.LayersModel => linearModel(box(12, 16, 16, 50 / 256), [-50 * threshold, 0, -10]);

async function writeRun(run: string, make: () => tfl.LayersModel): Promise<void> {
  for (const fold of [0, 1, 2]) {
    const model = make();
    const test = rows.filter((r) => r.fold === fold);
    const inputs = await Promise.all(test.map((r) => readImageAsInput(join(data, r.path), preprocessorFor(cfg()))));
    const probs = tf.tidy(() => (model.predict(tf.tensor4d(inputs.flatMap((x) => Array.from(x)), [test.length, SIZE, SIZE, 3])) as tf.Tensor).arraySync() as number[][]);
    writePredictionsCsv(
      join(run, `fold-${fold}`, 'predictions.csv'),
      test.map((r, i) => ({ path: r.path, source: r.source, patient: r.patient, fold, label: r.label, predicted: CLASSES[argMax(probs[i]!)]!, probs: probs[i]! })),
      CLASSES,
    );
    await saveModelDir(join(run, `fold-${fold}`, 'model'), { name: 'linear', classes: CLASSES, cfg: cfg(), members: [model] });
    model.dispose();
  }
}

/** Mean of the middle box of each frame, for a threshold in the widest gap between frames. */
async function middleThreshold(): Promise<{ threshold: number; gap: number }> {
  const means = await Promise.all(
    rows.map(async (r) => {
      const { rgb } = await decodeImage(join(data, r.path));
      let sum = 0;
      for (let y = 16; y < 32; y++) for (let x = 12; x < 28; x++) sum += rgb[(y * SIZE + x) * 3]! / 255;
      return sum / 256;
    }),
  );
  const sorted = [...means].sort((a, b) => a - b);
  let best = { threshold: 0, gap: 0 };
  // The widest gap with at least a quarter of the frames on either side, so that labels vary.
  for (let i = Math.floor(sorted.length / 4); i < Math.ceil((3 * sorted.length) / 4); i++) {
    const gap = sorted[i + 1]! - sorted[i]!;
    if (gap > best.gap) best = { threshold: (sorted[i]! + sorted[i + 1]!) / 2, gap };
  }
  return best;
}

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-robustness-'));
  process.env['POCOVID_CACHE'] = join(root, 'cache');
  data = join(root, 'data');
  rows = await writeTinyDataset(data, { patientsPerClass: 4, framesPerVideo: 3, folds: 3, size: SIZE });
  await writeRun(join(root, 'sensitive'), sensitiveModel);
  const { threshold } = await middleThreshold();
  await writeRun(join(root, 'insensitive'), () => insensitiveModel(threshold));
});

afterAll(() => {
  if (savedCache === undefined) delete process.env['POCOVID_CACHE'];
  else process.env['POCOVID_CACHE'] = savedCache;
  rmSync(root, { recursive: true, force: true });
});

describe('robustness tracks brittleness', () => {
  it('the phantom frames have an exactly black corner and a middle with a clear gap between frames (preconditions)', async () => {
    for (const r of rows) {
      const { rgb } = await decodeImage(join(data, r.path));
      for (let y = 0; y < CORNER; y++) {
        for (let x = 0; x < CORNER; x++) expect([rgb[(y * SIZE + x) * 3], rgb[(y * SIZE + SIZE - 1 - x) * 3]]).toEqual([0, 0]);
      }
    }
    expect((await middleThreshold()).gap).toBeGreaterThan(0.004);
  });

  it('a model sensitive to one grey level flips under ±1 noise, misses the targets, and not under gain or shift', async () => {
    const out = join(root, 'sensitive-report');
    const { report } = await runRobustness({ run: join(root, 'sensitive'), data, perturbations: ['noise-1', 'shift-1', 'gain+5', 'gain-5'], quiet: true, out, plots: false });
    const by = Object.fromEntries(report.perturbations.map((p) => [p.name, p]));
    expect(report.frames).toBe(rows.length);
    expect(by['noise-1']!.frameFlipRate).toBeGreaterThan(0.9);
    expect(by['noise-1']!.videoFlipRate).toBeGreaterThan(0.9);
    expect(by['noise-1']!.meanTopProbChange).toBeGreaterThan(0.9);
    expect(by['noise-1']!.target).toMatchObject({ met: false });
    for (const name of ['shift-1', 'gain+5', 'gain-5']) expect(by[name]).toMatchObject({ frameFlips: 0, videoFlips: 0 });
    expect(report.cleanCheck.labelAgreement).toBe(1);
    expect(report.cleanCheck.maxAbsDifference).toBeLessThan(1e-4);
    // The written report says the same.
    const written = JSON.parse(readFileSync(join(out, 'robustness.json'), 'utf8'));
    expect(written.perturbations[0]).toMatchObject({ name: 'noise-1', frameFlipRate: by['noise-1']!.frameFlipRate });
    expect(readFileSync(join(out, 'robustness.md'), 'utf8')).toMatch(/\| noise-1 \| 36 \| 3\d\/36 \(\d+\.\d%\) \| 12 \| 1[12]\/12 .* missed: frame flips/);
  });

  it('a model with a margin flips nothing and moves its top probability by little, while its labels vary', async () => {
    const { report } = await runRobustness({ run: join(root, 'insensitive'), data, perturbations: ['noise-1', 'noise-2', 'resize-area'], quiet: true, out: join(root, 'insensitive-report'), plots: false, runtime: 'tfjs' });
    for (const p of report.perturbations) {
      expect(p).toMatchObject({ frames: rows.length, frameFlips: 0, videoFlips: 0 });
      expect(p.meanTopProbChange!).toBeGreaterThan(0);
    }
    expect(report.perturbations[0]!.meanTopProbChange!).toBeLessThan(0.01);
    expect(report.perturbations[0]!.target).toEqual({ met: true, missed: [] });
    // No source folder behind this dataset: the resize went down and up from the stored frame, and the report says so.
    expect(report.perturbations[2]!.pixelsFrom).toEqual({ native: 0, stored: rows.length });
    expect(report.native.unavailable).toMatch(/names no source folder/);
    expect(report.folds.map((f) => f.runtime)).toEqual(['tfjs', 'tfjs', 'tfjs']);
    const predicted = [0, 1, 2].flatMap((k) => readPredictionsCsv(join(root, 'insensitive', `fold-${k}`, 'predictions.csv')).rows.map((r) => r.predicted));
    expect(new Set(predicted)).toEqual(new Set(['covid', 'pneumonia']));
  });

  it('--mirror-average scores each frame by the mean of its own and its mirror image\'s probabilities', async () => {
    // A model that reads only a patch left of the middle: the mirror image shows it the right one.
    const run = join(root, 'left-column');
    await writeRun(run, () => linearModel(box(8, 18, 8, 8 / 256), [-2, 0, -1]));
    const plain = await measureRobustness({ run, data, folds: [0], perturbations: ['gain+5'], quiet: true, runtime: 'tfjs' });
    const mirrored = await measureRobustness({ run, data, folds: [0], perturbations: ['gain+5'], quiet: true, runtime: 'tfjs', mirrorAverage: true });
    expect([plain.mirrorAverage, mirrored.mirrorAverage]).toEqual([false, true]);
    const { loadModelDir } = await import('../../src/model_dir/model_dir.js');
    const { mirrorInput } = await import('../../src/robustness/measure.js');
    const model = (await loadModelDir(join(run, 'fold-0', 'model'))).members[0]!;
    let differs = 0;
    for (const [i, record] of mirrored.records.entries()) {
      const input = (await clipToInputs([await decodeImage(join(data, record.path))], cfg()))[0]!;
      const own = tf.tidy(() => Array.from((model.predict(tf.tensor4d(input, [1, SIZE, SIZE, 3])) as tf.Tensor).dataSync()));
      const mirror = tf.tidy(() => Array.from((model.predict(tf.tensor4d(mirrorInput(input, [SIZE, SIZE], 3), [1, SIZE, SIZE, 3])) as tf.Tensor).dataSync()));
      record.clean.forEach((p, c) => expect(p).toBeCloseTo((own[c]! + mirror[c]!) / 2, 5));
      plain.records[i]!.clean.forEach((p, c) => expect(p).toBeCloseTo(own[c]!, 5));
      if (Math.abs(own[0]! - mirror[0]!) > 1e-3) differs++;
    }
    // The phantom is not symmetric: the mirror image really is another input for this model.
    expect(differs).toBeGreaterThan(0);
    model.dispose();
  });

  it('mirrors an input left to right, every channel with its pixel', async () => {
    const { mirrorInput } = await import('../../src/robustness/measure.js');
    const input = Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => i);
    // 2 rows × 3 columns × 2 channels.
    expect(Array.from(mirrorInput(input, [2, 3], 2))).toEqual([4, 5, 2, 3, 0, 1, 10, 11, 8, 9, 6, 7]);
  });

  it('feeds the network exactly what training fed it: resize and preprocessing as readImageAsInput', async () => {
    const path = join(data, rows[0]!.path);
    const small = { ...cfg(24), channels: 1 as const, mean: [0.5], std: [0.25] };
    expect(clipToInputs([await decodeImage(path)], small)[0]).toEqual(await readImageAsInput(path, preprocessorFor(small)));
    expect(clipToInputs([await decodeImage(path)], cfg())[0]).toEqual(await readImageAsInput(path, preprocessorFor(cfg())));
  });

  it("with the model's sector, masks the clip as predict does: the sector fitted on the clip's frames", async () => {
    const clip = rows.filter((r) => r.source === rows[0]!.source);
    const images = await Promise.all(clip.map((r) => decodeImage(join(data, r.path))));
    const masked = { ...cfg(), sector: 'mask' as const };
    const inputs = clipToInputs(images, masked);
    expect(inputs).toEqual(clipInputs(images, masked));
    // The phantom's fan leaves corners outside: masking must change them (to black, preprocessed).
    expect(inputs[0]).not.toEqual(clipToInputs([images[0]!], cfg())[0]);
  });

  it('refuses a dataset that lacks a test frame, an unknown fold and an unknown perturbation, naming them', async () => {
    const other = join(root, 'other');
    rmSync(other, { recursive: true, force: true });
    await writeTinyDataset(other, { patientsPerClass: 4, framesPerVideo: 3, folds: 3, size: SIZE });
    const manifest = readFileSync(join(other, 'manifest.csv'), 'utf8').split('\n');
    const [dropped, label, , , , , , , fold] = manifest.splice(1, 1)[0]!.split(',');
    writeFileSync(join(other, 'manifest.csv'), manifest.join('\n'));
    // Another dataset, consistent in itself (dataset.json counts what its manifest holds).
    const info = JSON.parse(readFileSync(join(other, 'dataset.json'), 'utf8')) as { counts: { perFold: Record<string, Record<string, number>> } };
    info.counts.perFold[fold!]![label!]! -= 1;
    writeFileSync(join(other, 'dataset.json'), JSON.stringify(info));
    await expect(measureRobustness({ run: join(root, 'sensitive'), data: other, quiet: true })).rejects.toThrow(
      `${join(other, 'manifest.csv')}: has no frame ${dropped}, a test frame of fold 0 (${join(root, 'sensitive', 'fold-0', 'predictions.csv')}): pass the dataset the run was trained on (--data)`,
    );
    await expect(measureRobustness({ run: join(root, 'sensitive'), data, folds: [0, 7], quiet: true })).rejects.toThrow(/sensitive: has no fold 7; folds present: 0, 1, 2/);
    await expect(measureRobustness({ run: join(root, 'sensitive'), data, perturbations: ['blur'], quiet: true })).rejects.toThrow(/unknown perturbation "blur"; valid: noise-1, noise-2, jpeg-95/);
    await expect(measureRobustness({ run: join(root, 'sensitive'), quiet: true })).rejects.toThrow(/has no config.json naming its dataset; pass --data <dataset>/);
    await expect(measureRobustness({ run: data, data, quiet: true })).rejects.toThrow(/not a training run/);
  });
});
