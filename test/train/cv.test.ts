// Cross-validation end to end on a tiny phantom dataset: every frame predicted once by the fold
// that held it out, finished folds kept on a re-run, and the frozen-backbone features shared
// between folds giving exactly what each fold computes on its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine, tf } from '../../src/engine/index.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';
import { createForwardRunner } from '../../src/onnx/runtime.js';
import { readPredictionsCsv } from '../../src/eval/csv.js';
import { runCrossValidation } from '../../src/train/cv.js';
import { computeFeatures, computeFeaturesThrough, createFeatureStore, claimFeatureStore } from '../../src/train/feature_cache.js';
import { trainFold } from '../../src/train/train_fold.js';
import { createKeyedRng } from '../../src/util/rng.js';
import type { ManifestRow } from '../../src/data/types.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';
import { weightsOfRun } from '../helpers/run_weights.js';

let root: string;
let data: string;
let rows: ManifestRow[];

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-cv-'));
  data = join(root, 'data');
  rows = await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 3, folds: 3, size: 40 });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('createKeyedRng', () => {
  it('gives the same stream for the same (seed, key) and different streams otherwise', () => {
    const draw = (seed: number, key: string) => Array.from({ length: 4 }, ((rng) => () => rng.next())(createKeyedRng(seed, key)));
    expect(draw(1, 'a.png#1')).toEqual(draw(1, 'a.png#1'));
    expect(draw(1, 'a.png#1')).not.toEqual(draw(1, 'a.png#2'));
    expect(draw(1, 'a.png#1')).not.toEqual(draw(2, 'a.png#1'));
  });
});

describe('computeFeaturesThrough', () => {
  it('runs the backbone only for keys the store lacks and returns what computeFeatures returns', async () => {
    const built = createModel('mobilenet_v1', { numClasses: 3, inputSize: [32, 32], seed: 1 });
    const runner = await createForwardRunner(built.backbone!, { runtime: 'tfjs' });
    let calls = 0;
    const counting = { ...runner, run: (batch: Float32Array, n: number) => ((calls += n), runner.run(batch, n)) };
    const images = Array.from({ length: 5 }, (_, i) => Float32Array.from({ length: 32 * 32 * 3 }, (_, j) => Math.sin(i * 7 + j)));
    const entries = (ids: number[]) => ids.map((i) => ({ key: `frame-${i}`, input: async () => images[i]! }));
    const store = createFeatureStore();
    claimFeatureStore(store, 'backbone-a');
    const first = await computeFeaturesThrough(store, counting, entries([0, 1, 2]), { batchSize: 2 });
    expect([first.reused, calls]).toEqual([0, 3]);
    const second = await computeFeaturesThrough(store, counting, entries([2, 3, 0, 4]), { batchSize: 2 });
    expect([second.reused, calls]).toEqual([2, 5]);
    const direct = await computeFeatures(runner, 4, async (i) => images[[2, 3, 0, 4][i]!]!, { batchSize: 4 });
    expect(second.features.shapes).toEqual(direct.shapes);
    const worst = direct.data[0]!.reduce((w, v, i) => Math.max(w, Math.abs(v - second.features.data[0]![i]!)), 0);
    expect(worst).toBeLessThan(1e-5);
    // Another backbone empties the store.
    claimFeatureStore(store, 'backbone-b');
    expect(store.entries.size).toBe(0);
    await runner.dispose();
    disposeBuiltModel(built);
  });
});

describe('runCrossValidation', () => {
  const options = () => ({
    data,
    model: 'mobilenet_v1',
    inputSize: [32, 32] as [number, number],
    batchSize: 8,
    seed: 5,
    dropout: 0,
    epochs: 1,
    views: 2,
    runtime: 'tfjs' as const,
  });

  it('predicts every frame once from its own test fold, and a fold trained with the shared features equals the fold trained alone', async () => {
    const out = join(root, 'cv');
    const result = await runCrossValidation({ ...options(), out }, true);
    expect(result.folds.map((f) => [f.fold, f.kept])).toEqual([
      [0, false],
      [1, false],
      [2, false],
    ]);
    const predicted = readPredictionsCsv(result.predictions).rows;
    expect(predicted.map((r) => r.path).sort()).toEqual(rows.map((r) => r.path).sort());
    const foldOf = new Map(rows.map((r) => [r.path, r.fold]));
    for (const row of predicted) expect(row.fold).toBe(foldOf.get(row.path));

    // Fold 2 reused fold 0's and fold 1's features (views included); alone it computes its own.
    const entries = result.folds.map((f) => f.summary.featureEntries);
    expect(entries[0]!.reused).toBe(0);
    expect(entries[2]!.reused).toBeGreaterThan(4 * entries[2]!.computed);
    const alone = join(root, 'fold-2-alone');
    await trainFold({ ...options(), fold: 2, out: alone }, { quiet: true });
    const [a, b] = [await weightsOfRun(join(out, 'fold-2')), await weightsOfRun(alone)];
    let worst = 0;
    for (const [name, values] of a) values.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b.get(name)![i]!))));
    expect(worst).toBe(0);

    const tensorsBefore = tf.memory().numTensors;
    const again = await runCrossValidation({ ...options(), out }, true);
    expect(again.folds.every((f) => f.kept)).toBe(true);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });
});
