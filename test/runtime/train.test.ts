// --runtime in training: the frozen backbone's forward pass (feature cache, or every step with the
// cache off) on ONNX Runtime gives the same features and the same trained weights as on TF.js.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { readPredictionsCsv } from '../../src/eval/csv.js';
import { disposeBuiltModel } from '../../src/models/cut.js';
import { createModel } from '../../src/models/registry.js';
import '../../src/models/index.js';
import { createForwardRunner } from '../../src/onnx/index.js';
import { computeFeatures } from '../../src/train/feature_cache.js';
import { trainFold } from '../../src/train/train_fold.js';
import { createRng } from '../../src/util/rng.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';
import { trainableWeightNames, weightDifferences, weightsOfRun } from '../helpers/run_weights.js';

let root: string;
let data: string;
const savedCache = process.env['POCOVID_CACHE'];

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-rt-train-'));
  // Exports made by the trainer go to this test's own cache.
  process.env['POCOVID_CACHE'] = join(root, 'cache');
  data = join(root, 'data');
  await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 3, folds: 3, size: 40 });
});

afterAll(() => {
  if (savedCache === undefined) delete process.env['POCOVID_CACHE'];
  else process.env['POCOVID_CACHE'] = savedCache;
  rmSync(root, { recursive: true, force: true });
});

const weightsOf = weightsOfRun;

const differences = weightDifferences;

const LR = 1e-4;
const largest = (values: number[]): number => values.reduce((a, b) => Math.max(a, b), 0);

describe('feature cache on ONNX Runtime', () => {
  it('stores every output of a multi-output backbone (ResNet-18 cut) as TF.js does, within 1e-4', async () => {
    const built = createModel('resnet18', { numClasses: 3, inputSize: [32, 32], seed: 1 });
    expect(built.backbone!.outputs.length).toBe(2);
    const rng = createRng(4);
    const images = Array.from({ length: 5 }, () => Float32Array.from({ length: 32 * 32 * 3 }, () => rng.normal()));
    const provider = async (i: number): Promise<Float32Array> => images[i]!;
    const ort = await createForwardRunner(built.backbone!, { runtime: 'ort', cacheDir: false });
    const tfjs = await createForwardRunner(built.backbone!, { runtime: 'tfjs' });
    const [a, b] = [await computeFeatures(ort, 5, provider, { batchSize: 2 }), await computeFeatures(tfjs, 5, provider, { batchSize: 2 })];
    expect(a.shapes).toEqual(built.backbone!.outputs.map((o) => o.shape.slice(1)));
    expect(a.shapes).toEqual(b.shapes);
    a.data.forEach((values, k) => {
      let worst = 0;
      for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i]! - b.data[k]![i]!));
      expect(worst).toBeLessThan(1e-4);
    });
    await ort.dispose();
    disposeBuiltModel(built);
  });
});

describe('trainFold --runtime', () => {
  const common = () => ({ data, model: 'mobilenet_v1', inputSize: [32, 32] as [number, number], batchSize: 8, seed: 3, dropout: 0, fold: 2, epochs: 1, augment: false });

  it('ort and tfjs give the same weights after an epoch, and config.json records the runtime', async () => {
    const ort = join(root, 'run-ort');
    const tfjs = join(root, 'run-tfjs');
    await trainFold({ ...common(), lr: LR, out: ort, runtime: 'ort' }, { quiet: true });
    await trainFold({ ...common(), lr: LR, out: tfjs, runtime: 'tfjs' }, { quiet: true });
    const [a, b] = [await weightsOf(ort), await weightsOf(tfjs)];
    // The features agree to ~1e-7 (test above), but Adam's first steps move every weight by about
    // ±lr whatever the size of its gradient (m/√v ≈ sign g), so a weight whose gradient is ~0 can
    // step the other way on a 1e-7 difference: a handful differ by about one step. Counted over
    // the trainable weights only (the frozen ones are equal in any two runs of this seed): every
    // other one must agree within 1e-5, and none may differ by more than 2 steps.
    const trainable = trainableWeightNames('mobilenet_v1', { numClasses: 3, inputSize: [32, 32], dropout: 0 });
    expect(trainable.size).toBeGreaterThan(0);
    expect(trainable.size).toBeLessThan(a.size);
    const diffs = differences(a, b, trainable);
    const far = diffs.filter((d) => d > 1e-5).length;
    expect(far / diffs.length).toBeLessThan(1e-4);
    expect(largest(differences(a, b))).toBeLessThan(2 * LR);
    const probs = (run: string) => readPredictionsCsv(join(run, 'predictions.csv')).rows.flatMap((r) => r.probs);
    const [pa, pb] = [probs(ort), probs(tfjs)];
    expect(pa.length).toBe(pb.length);
    expect(largest(pa.map((p, i) => Math.abs(p - pb[i]!)))).toBeLessThan(1e-3);
    expect((JSON.parse(readFileSync(join(ort, 'config.json'), 'utf8')) as { runtime: string }).runtime).toBe('ort');
    expect((JSON.parse(readFileSync(join(tfjs, 'config.json'), 'utf8')) as { runtime: string }).runtime).toBe('tfjs');
  });

  it('runs the backbone on ort every step when the cache is off, with the same weights as the ort cache', async () => {
    const live = join(root, 'run-live-ort');
    await trainFold({ ...common(), lr: LR, out: live, runtime: 'ort', featureCache: 'off' }, { quiet: true });
    expect(largest(differences(await weightsOf(live), await weightsOf(join(root, 'run-ort'))))).toBeLessThan(1e-4);
  });
});
