// Fold training end to end on a tiny phantom dataset: outputs, honest splits, resume, and the
// feature cache giving the same weights as running the whole network.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine, tf } from '../../src/engine/index.js';
import { readPredictionsCsv } from '../../src/eval/csv.js';
import { loadModel } from '../../src/model_dir/run.js';
import { trainFold } from '../../src/train/train_fold.js';
import type { TrainingHandler } from '../../src/train/handlers.js';
import type { ManifestRow } from '../../src/data/types.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';
import { trainableWeightNames, weightDifferences, weightsOfRun } from '../helpers/run_weights.js';

let root: string;
let data: string;
let rows: ManifestRow[];

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-train-'));
  data = join(root, 'data');
  rows = await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 3, folds: 3, size: 40 });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const base = () => ({ data, model: 'grayscale_cnn', inputSize: [32, 32] as [number, number], batchSize: 8, seed: 7, dropout: 0 });

const weightsOf = weightsOfRun;

function maxDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let worst = 0;
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, values] of a) {
    const other = b.get(name)!;
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i]! - other[i]!));
  }
  return worst;
}

describe('trainFold', () => {
  it('writes config, history, predictions of the test fold only, a model with its guard, and never mixes patients', async () => {
    const out = join(root, 'run-a');
    const result = await trainFold({ ...base(), fold: 1, out, epochs: 2 }, { quiet: true });
    for (const file of ['config.json', 'history.jsonl', 'predictions.csv', 'result.json', 'model/pocovid.json', 'checkpoint/state.json']) {
      expect(existsSync(join(out, file)), file).toBe(true);
    }
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.seed).toBe(7);
    expect(config.classes).toEqual(['covid', 'pneumonia', 'regular']);
    const history = readFileSync(join(out, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; valBalancedAccuracy: number });
    expect(history.map((h) => h.epoch)).toEqual([0, 1]);

    const predictions = readPredictionsCsv(join(out, 'predictions.csv'));
    const testRows = rows.filter((r) => r.fold === 1);
    expect(predictions.rows.map((r) => r.path).sort()).toEqual(testRows.map((r) => r.path).sort());
    for (const p of predictions.rows) expect(p.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);

    // The validation patients come from the training folds and are disjoint from both other splits.
    const split = config.split as { validationPatients: string[] };
    const testPatients = new Set(testRows.map((r) => r.patient));
    expect(split.validationPatients.length).toBeGreaterThan(0);
    for (const p of split.validationPatients) expect(testPatients.has(p)).toBe(false);
    expect(result.bestEpoch).toBeGreaterThanOrEqual(0);

    const loaded = await loadModel(out);
    expect(loaded.meta.classes).toEqual(['covid', 'pneumonia', 'regular']);
    expect(loaded.meta.guard?.fittedOn).toBe(rows.filter((r) => r.fold !== 1).length);
    loaded.members.forEach((m) => m.dispose());
    // Nothing of a run is left on the engine (measured from a second run: the first one also fills
    // TF.js' own caches of constants, which stay by design).
    const tensorsBefore = tf.memory().numTensors;
    await trainFold({ ...base(), fold: 1, out: join(root, 'run-a2'), epochs: 1 }, { quiet: true });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('resumes a run killed mid-training at its checkpoint: finished epochs are not re-run and it ends where an uninterrupted run ends', async () => {
    const straight = join(root, 'run-straight');
    const resumed = join(root, 'run-resumed');
    await trainFold({ ...base(), fold: 0, out: straight, epochs: 4 }, { quiet: true });
    // A failure injected in the handlers of the second epoch (index 1), before its checkpoint is
    // saved: the folder then holds the checkpoint of epoch 0, as after a kill at that moment.
    const killAfterSecondEpoch: TrainingHandler = {
      afterEpoch: ({ log }) => {
        if (log.epoch === 1) throw new Error('killed');
      },
    };
    await expect(trainFold({ ...base(), fold: 0, out: resumed, epochs: 4 }, { quiet: true, handlers: [killAfterSecondEpoch] })).rejects.toThrow('killed');
    expect(existsSync(join(resumed, 'result.json'))).toBe(false);
    const ranAgain: number[] = [];
    const counting: TrainingHandler = { afterEpoch: ({ log }) => void ranAgain.push(log.epoch) };
    await trainFold({ ...base(), fold: 0, out: resumed, epochs: 4 }, { quiet: true, handlers: [counting] });
    // Epoch 0 finished and was checkpointed; epoch 1 died before its checkpoint, so it runs again.
    expect(ranAgain).toEqual([1, 2, 3]);
    const epochs = readFileSync(join(resumed, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { epoch: number }).epoch);
    expect(epochs).toEqual([0, 1, 2, 3]);
    expect(maxDifference(await weightsOf(straight), await weightsOf(resumed))).toBeLessThan(1e-5);
    // Every epoch's log matches the uninterrupted run's, epoch 0's being the killed run's own line.
    const straightHistory = readFileSync(join(straight, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number });
    const resumedHistory = readFileSync(join(resumed, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number });
    expect(resumedHistory.map((h) => h.loss)).toEqual(straightHistory.map((h) => h.loss));
  });

  it('gives the same weights with the frozen-feature cache as running the whole network every step', async () => {
    const common = { ...base(), model: 'mobilenet_v1', fold: 2, epochs: 1, augment: false };
    const cached = join(root, 'run-cached');
    const live = join(root, 'run-live');
    const withCache = await trainFold({ ...common, out: cached, featureCache: 'auto' }, { quiet: true });
    const withoutCache = await trainFold({ ...common, out: live, featureCache: 'off' }, { quiet: true });
    // The cache was really used: the backbone ran once per frame of the fold (one view, no
    // augmentation) and never during the epochs; the live path stored nothing.
    const config = JSON.parse(readFileSync(join(cached, 'config.json'), 'utf8')) as { split: { train: number; validation: number; test: number } };
    expect(withCache.featureEntries).toEqual({ computed: config.split.train + config.split.validation + config.split.test, reused: 0 });
    expect(withoutCache.featureEntries).toEqual({ computed: 0, reused: 0 });
    expect(withoutCache.featureCacheSeconds).toBe(0);
    expect(maxDifference(await weightsOf(cached), await weightsOf(live))).toBeLessThan(1e-4);
  });

  it('trains VGG-16 on the cropped feature cache (the region its head reads) to the same weights as the whole network', async () => {
    // At 160×160 block5 is 10×10 and the head reads 9×9 of it (see src/models/feature_crop.ts).
    // One step (the batch holds the whole training split), so the bound below is one Adam step.
    const lr = 1e-4;
    const common = { ...base(), model: 'vgg16', inputSize: [160, 160] as [number, number], fold: 2, epochs: 1, augment: false, batchSize: 64, lr };
    const cached = join(root, 'run-vgg-cached');
    const live = join(root, 'run-vgg-live');
    const logged: string[] = [];
    const progress = { start() {}, update() {}, stop() {}, log: (line: string) => logged.push(line) };
    await trainFold({ ...common, out: cached, featureCache: 'auto' }, { quiet: true, progress });
    expect(logged.join('\n')).toContain('feature cache keeps the region the head reads: 9×9 of 10×10');
    await trainFold({ ...common, out: live, featureCache: 'off' }, { quiet: true });
    // The cropped conv sums in another order (~1e-7 apart), and Adam's first step moves a weight by
    // about ±lr whatever the size of its gradient (m/√v ≈ sign g): a weight whose gradient is ~0
    // can go the other way. So: almost every trainable weight within 1e-5 (counted over the
    // trainable ones: the frozen base is equal in any two runs of this seed), none beyond two steps.
    const [a, b] = [await weightsOf(cached), await weightsOf(live)];
    const trainable = trainableWeightNames('vgg16', { numClasses: 3, inputSize: [160, 160], dropout: 0 });
    expect(trainable.size).toBeLessThan(a.size);
    const diffs = weightDifferences(a, b, trainable);
    expect(diffs.filter((d) => d > 1e-5).length / diffs.length).toBeLessThan(1e-4);
    expect(maxDifference(a, b)).toBeLessThan(2 * lr);
  });

  it('releases the model and its tensors when a fold fails part-way through an epoch', async () => {
    // A progress reporter that throws when the first epoch starts stands in for any failure there.
    const failing = { start(label: string) { if (label.startsWith('epoch')) throw new Error('failed in the epoch loop'); }, update() {}, stop() {}, log() {} };
    const run = (out: string) => trainFold({ ...base(), model: 'mobilenet_v1', fold: 2, out, epochs: 1, augment: false }, { progress: failing });
    await expect(run(join(root, 'fail-1'))).rejects.toThrow(/failed in the epoch loop/);
    // Measured from a second failure: the first one also fills TF.js' own caches of constants.
    const tensorsBefore = tf.memory().numTensors;
    await expect(run(join(root, 'fail-2'))).rejects.toThrow(/failed in the epoch loop/);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('trains with the recipe options (linear head on a frozen MobileNet, grey, input blur, ultrasound augmentation, source weights, mixup, smoothing, weight decay) and records them in the model it writes', async () => {
    const out = join(root, 'run-recipe');
    const recipe = { head: 'linear', trainableLayers: 0, colour: 'grey', sector: 'mask', inputBlur: 1.5, augmentation: 'ultrasound', views: 2, classWeights: 'source', mixup: 0.4, labelSmoothing: 0.1, weightDecay: 1e-3 } as const;
    const result = await trainFold({ ...base(), model: 'mobilenet_v1', fold: 1, out, epochs: 2, lr: 1e-3, ...recipe }, { quiet: true });
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown> & { resolvedModel: { cfg: { colour?: string; featureLayer: string } } };
    for (const [key, value] of Object.entries(recipe)) expect(config[key], key).toEqual(value);
    expect(config.resolvedModel.cfg.colour).toBe('grey');
    expect(config.resolvedModel.cfg.featureLayer).toBe('cam_gap');
    // Two views of every training frame (the original and one ultrasound augmentation), computed once.
    const split = (config as unknown as { split: { train: number; validation: number; test: number } }).split;
    expect(result.featureEntries.computed).toBe(2 * split.train + split.validation + split.test);
    const loaded = await loadModel(out);
    expect(loaded.meta.cfg.colour).toBe('grey');
    expect(loaded.meta.cfg.sector).toBe('mask');
    expect(loaded.meta.cfg.blur).toBe(1.5);
    // The sector of every source was fitted once and kept with the dataset.
    const sectors = JSON.parse(readFileSync(join(data, 'sectors.json'), 'utf8')) as { sources: Record<string, { frames: number; sector: { kind: string } }> };
    expect(Object.keys(sectors.sources).sort()).toEqual([...new Set(rows.map((r) => r.source))].sort());
    for (const entry of Object.values(sectors.sources)) expect(entry.frames).toBe(3);
    expect(loaded.members[0]!.layers.map((l) => l.name)).toContain('cam_gap');
    loaded.members.forEach((m) => m.dispose());
  });

  it('refits on every frame: no test or validation frames, exactly the epochs asked for, the last epoch kept', async () => {
    const out = join(root, 'run-refit');
    const result = await trainFold({ ...base(), fold: 0, out, epochs: 3, refit: true }, { quiet: true });
    const history = readFileSync(join(out, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number });
    expect(history.map((h) => h.epoch)).toEqual([0, 1, 2]);
    expect(result.testPredictions).toHaveLength(0);
    expect(result.stoppedEarly).toBe(false);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { split: { train: number; validation: number; test: number } };
    expect(config.split).toMatchObject({ train: rows.length, validation: 0, test: 0 });
    const loaded = await loadModel(out);
    expect(loaded.meta.guard?.fittedOn).toBe(rows.length);
    loaded.members.forEach((m) => m.dispose());
  });

  it("fits a logistic head with the invariance penalty on 'pipeline' views: the views are not rows, their stability on held-out training folds is recorded", async () => {
    const out = join(root, 'run-invariance');
    const options = { data, model: 'mobilenet_v1', inputSize: [32, 32] as [number, number], head: 'logistic' as const, trainableLayers: 0, seed: 5, fold: 0, penalties: [0.1] };
    await trainFold({ ...options, out, augment: true, augmentation: 'pipeline', views: 3, invariance: 10 }, { quiet: true });
    const log = JSON.parse(readFileSync(join(out, 'logistic.json'), 'utf8')) as { invariance: number; grid: { innerViewFlipRate?: number; innerViewTopProbChange?: number }[] };
    expect(log.invariance).toBe(10);
    expect(log.grid[0]!.innerViewFlipRate).toBeGreaterThanOrEqual(0);
    expect(log.grid[0]!.innerViewTopProbChange).toBeGreaterThan(0);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { invariance: number; augmentation: string };
    expect(config).toMatchObject({ invariance: 10, augmentation: 'pipeline' });
    // The same views as rows of the fit instead: another classifier.
    const asRows = join(root, 'run-invariance-rows');
    await trainFold({ ...options, out: asRows, augment: true, augmentation: 'pipeline', views: 3 }, { quiet: true });
    expect(maxDifference(await weightsOf(out), await weightsOf(asRows))).toBeGreaterThan(1e-4);
    // The penalty without views to take it from is refused, naming what is missing.
    await expect(trainFold({ ...options, out: join(root, 'run-invariance-bad'), augment: false, invariance: 1 }, { quiet: true })).rejects.toThrow(/--invariance 1 .* needs --augment on/);
  });

  it('refuses a fold the dataset does not have, naming the folds it has', async () => {
    await expect(trainFold({ ...base(), fold: 5, out: join(root, 'bad'), epochs: 1 }, { quiet: true })).rejects.toThrow(/fold 5 does not exist; the dataset has folds 0\.\.2/);
  });
});
