// `pocovid update` on a run trained on one phantom site and new data from another site (another
// probe geometry and gain): the inserted layer starts as the identity, each mode moves only what it
// says, the before/after figures are the saved models' own predictions, and the outputs are a run.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { initEngine } from '../../src/engine/index.js';
import { readPredictionsCsv } from '../../src/eval/csv.js';
import { applySite, samplePhantomScene } from '../../src/data/phantom.js';
import { layersModelFromFiles } from '../../src/model_dir/layers_io.js';
import { loadModelDir, readMemberFiles, readModelMeta } from '../../src/model_dir/model_dir.js';
import { trainFold } from '../../src/train/train_fold.js';
import { insertLayerBeforeClassifier } from '../../src/models/insert_layer.js';
import { predictDatasetRows, updateRun } from '../../src/train/update.js';
import { createRng } from '../../src/util/rng.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';
import type { ManifestRow } from '../../src/data/types.js';

let root: string;
let oldData: string;
let newData: string;
let oldRows: ManifestRow[];
let newRows: ManifestRow[];
let run: string;
const site = { gain: 1.7, sectorDegrees: 16, apex: 1.2 };

async function weightsOf(modelDir: string): Promise<Map<string, Float32Array>> {
  const loaded = await loadModelDir(modelDir);
  const out = new Map(loaded.members[0]!.weights.map((w) => [w.originalName, Float32Array.from(w.read().dataSync() as Float32Array)]));
  loaded.members.forEach((m) => m.dispose());
  return out;
}

const same = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-update-'));
  process.env.POCOVID_CACHE = join(root, 'cache');
  oldData = join(root, 'site-a');
  newData = join(root, 'site-b');
  oldRows = await writeTinyDataset(oldData, { patientsPerClass: 6, framesPerVideo: 3, folds: 3, size: 40 });
  newRows = await writeTinyDataset(newData, { patientsPerClass: 6, framesPerVideo: 3, folds: 2, size: 40, seed: 9, site });
  run = join(root, 'run');
  await trainFold({ data: oldData, out: run, fold: 0, model: 'mobilenet_v1', inputSize: [32, 32], batchSize: 8, seed: 2, dropout: 0, epochs: 2, lr: 1e-3, views: 2 }, { quiet: true });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('simulated second site', () => {
  it('keeps every random choice of a scene and changes only its geometry and gain', () => {
    const a = samplePhantomScene('covid', 64, createRng(3));
    const b = samplePhantomScene('covid', 64, createRng(3), site);
    expect(b).toEqual(applySite(a, site));
    expect(b.gain).toBeCloseTo(a.gain * 1.7, 12);
    expect(b.halfAngle).toBeCloseTo((16 * Math.PI) / 180, 12);
    expect(b.apexY).toBeCloseTo(-64 * 1.2, 12);
    expect(b.outerRadius - b.innerRadius).toBeCloseTo(a.outerRadius - a.innerRadius, 9);
    expect(b.bLines).toEqual(a.bLines);
    expect(samplePhantomScene('covid', 64, createRng(3), undefined)).toEqual(a);
  });
});

describe('insertLayerBeforeClassifier', () => {
  it('adds a trainable Dense that starts as the identity, freezing the rest', async () => {
    const dir = join(run, 'model');
    const meta = readModelMeta(dir);
    const files = readMemberFiles(dir, meta.members[0]!);
    const edited = insertLayerBeforeClassifier(files, meta.cfg.classifier);
    expect(edited.layer).toBe('update_1');
    const [before, after] = [await layersModelFromFiles(files), await layersModelFromFiles(edited.files)];
    expect(after.layers.map((l) => l.name).slice(-3)).toEqual(['head_dropout', 'update_1', 'classifier']);
    expect(after.trainableWeights.map((w) => w.originalName)).toEqual(['update_1/kernel', 'update_1/bias']);
    const x = tf.randomUniform([4, 32, 32, 3], -1, 1, 'float32', 1);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(before.predict(x) as tf.Tensor, after.predict(x) as tf.Tensor))).dataSync()[0]!);
    expect(diff).toBeLessThan(1e-6);
    // A second update adds a second layer.
    expect(insertLayerBeforeClassifier(edited.files, meta.cfg.classifier).layer).toBe('update_2');
    tf.dispose([x]);
    before.dispose();
    after.dispose();
  });
});

describe('updateRun', () => {
  it('head: fine-tunes only what the run trained, scores both test folds before and after with the saved models', async () => {
    const out = join(root, 'update-head');
    const result = await updateRun({ run, data: newData, out, mode: 'head', epochs: 2, lr: 1e-3, newTestFold: 1, quiet: true });
    expect(result.folds.map((f) => f.fold)).toEqual([0]);
    const fold = join(out, 'fold-0');
    for (const file of ['config.json', 'model/pocovid.json', 'predictions.csv', 'calibration_predictions.csv', 'new_test_before.csv', 'new_test_after.csv', 'old_test_before.csv', 'old_test_after.csv']) {
      expect(existsSync(join(fold, file)), file).toBe(true);
    }
    // Trained on the new site's training folds, tested on its fold 1; the old test fold is the run's fold 0.
    const tested = readPredictionsCsv(join(fold, 'predictions.csv')).rows.map((r) => r.path).sort();
    expect(tested).toEqual(newRows.filter((r) => r.fold === 1).map((r) => r.path).sort());
    expect(readPredictionsCsv(join(fold, 'old_test_after.csv')).rows.map((r) => r.path).sort()).toEqual(oldRows.filter((r) => r.fold === 0).map((r) => r.path).sort());
    // "Before" on the run's own test fold is what the run itself predicted there.
    const runOwn = new Map(readPredictionsCsv(join(run, 'predictions.csv')).rows.map((r) => [r.path, r.probs]));
    for (const r of readPredictionsCsv(join(fold, 'old_test_before.csv')).rows) {
      r.probs.forEach((p, k) => expect(Math.abs(p - runOwn.get(r.path)![k]!)).toBeLessThan(1e-4));
    }
    // "After" on the new data is the updated model's forward pass, the same as the run's predictions.csv.
    const after = await predictDatasetRows(join(fold, 'model'), newData, newRows.filter((r) => r.fold === 1), 'tfjs');
    const written = new Map(readPredictionsCsv(join(fold, 'new_test_after.csv')).rows.map((r) => [r.path, r.probs]));
    for (const r of after) r.probs.forEach((p, k) => expect(Math.abs(p - written.get(r.path)![k]!)).toBeLessThan(1e-4));
    // ...and "after" on the run's test fold is that model too, not the run's.
    const forgot = await predictDatasetRows(join(fold, 'model'), oldData, oldRows.filter((r) => r.fold === 0), 'tfjs');
    const writtenOld = new Map(readPredictionsCsv(join(fold, 'old_test_after.csv')).rows.map((r) => [r.path, r.probs]));
    for (const r of forgot) r.probs.forEach((p, k) => expect(Math.abs(p - writtenOld.get(r.path)![k]!)).toBeLessThan(1e-4));
    const f = result.folds[0]!;
    const accuracy = (rows: { label: string; predicted: string }[]) => rows.filter((r) => r.label === r.predicted).length / rows.length;
    expect(f.newData.after.frameAccuracy).toBeCloseTo(accuracy(readPredictionsCsv(join(fold, 'new_test_after.csv')).rows), 12);
    expect(f.oldData.before.frameAccuracy).toBeCloseTo(accuracy(readPredictionsCsv(join(fold, 'old_test_before.csv')).rows), 12);
    // Frozen layers kept their weights; the trained part moved.
    const [a, b] = [await weightsOf(join(run, 'model')), await weightsOf(join(fold, 'model'))];
    expect(same(a.get('conv1/kernel')!, b.get('conv1/kernel')!)).toBe(true);
    expect(same(a.get('classifier/kernel')!, b.get('classifier/kernel')!)).toBe(false);
    const config = JSON.parse(readFileSync(join(fold, 'config.json'), 'utf8'));
    expect(config.weightsUsed).toEqual({ kind: 'init-run', path: join(run, 'model') });
    expect(readModelMeta(join(fold, 'model')).conformal!.calibratedOn).toBe('validation');
    const md = readFileSync(join(out, 'update.md'), 'utf8');
    expect(md).toContain('| 0 | new data, test fold 1 (gain) |');
    expect(md).toContain("| 0 | run's test fold 0 (forgetting) |");
  });

  it('new-layer: only the added layer changes, and the model saved with it loads like any other', async () => {
    const out = join(root, 'update-layer');
    const result = await updateRun({ run, data: newData, out, mode: 'new-layer', epochs: 2, lr: 1e-2, newTestFold: 1, quiet: true });
    expect(result.folds[0]!.addedLayer).toBe('update_1');
    const [a, b] = [await weightsOf(join(run, 'model')), await weightsOf(join(out, 'fold-0', 'model'))];
    expect([...b.keys()].filter((k) => !a.has(k)).sort()).toEqual(['update_1/bias', 'update_1/kernel']);
    for (const [name, values] of a) expect(same(values, b.get(name)!), name).toBe(true);
    const kernel = b.get('update_1/kernel')!;
    const width = Math.sqrt(kernel.length);
    const identity = Float32Array.from({ length: kernel.length }, (_, i) => (i % (width + 1) === 0 ? 1 : 0));
    expect(same(kernel, identity)).toBe(false);
  });

  it('runs from the command line and names what is wrong', async () => {
    const out = join(root, 'update-cli');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      await main(['node', 'pocovid', 'update', '--run', run, '--data', newData, '--out', out, '--mode', 'new-layer', '--epochs', '1', '--new-fold', '1', '--quiet']);
      expect(log.mock.calls.flat().join('\n')).toMatch(/fold 0: new data frame accuracy \d\.\d{3} → \d\.\d{3}/);
      expect(existsSync(join(out, 'fold-0', 'report.html'))).toBe(true);
      await main(['node', 'pocovid', 'update', '--run', run, '--data', newData, '--out', join(root, 'bad'), '--new-fold', '4', '--quiet']);
      expect(err.mock.calls.flat().join('\n')).toMatch(/site-b: has no fold 4; its folds are 0\.\.1/);
      await main(['node', 'pocovid', 'update', '--run', join(root, 'nowhere'), '--data', newData, '--out', join(root, 'bad2'), '--quiet']);
      expect(err.mock.calls.flat().join('\n')).toMatch(/nowhere: not a training run/);
      process.exitCode = 0;
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
  });
});

