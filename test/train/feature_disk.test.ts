// The frozen-feature cache on disk: entries written by one store are read back, bit for bit, by a
// fresh one (another process, another machine on the shared disk); a damaged file is reported and
// computed again; backbones stay apart; two stores filling the same folder at once leave complete
// files; and a fold trained on features read back from disk ends at exactly the weights it reaches
// with the in-memory store.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';
import { createForwardRunner, type ForwardRunner } from '../../src/onnx/index.js';
import { claimFeatureStore, computeFeaturesThrough, createFeatureStore } from '../../src/train/feature_cache.js';
import { createDiskFeatureStore, featureFile } from '../../src/train/feature_disk.js';
import { trainFold } from '../../src/train/train_fold.js';
import { weightsOfRun } from '../helpers/run_weights.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

let root: string;
let runner: ForwardRunner;
let built: ReturnType<typeof createModel>;
let calls = 0;
const images = Array.from({ length: 6 }, (_, i) => Float32Array.from({ length: 32 * 32 * 3 }, (_, j) => Math.sin(i * 7 + j * 0.37)));
const entries = (ids: number[]) => ids.map((i) => ({ key: `frames/f${i}.png#${i % 2}`, input: async () => images[i]! }));
const counting = (): ForwardRunner => ({ ...runner, run: (batch: Float32Array, n: number) => ((calls += n), runner.run(batch, n)) });

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-feature-disk-'));
  process.env['POCOVID_CACHE'] = join(root, 'cache');
  built = createModel('mobilenet_v1', { numClasses: 3, inputSize: [32, 32], seed: 1 });
  runner = await createForwardRunner(built.backbone!, { runtime: 'tfjs' });
});

afterAll(async () => {
  await runner?.dispose();
  if (built) disposeBuiltModel(built);
  rmSync(root, { recursive: true, force: true });
});

describe('the on-disk feature store', () => {
  it('gives a fresh store the very same features without running the backbone', async () => {
    const dir = join(root, 'shared');
    const first = createDiskFeatureStore(dir);
    claimFeatureStore(first, 'backbone-a');
    calls = 0;
    const computed = await computeFeaturesThrough(first, counting(), entries([0, 1, 2, 3]), { batchSize: 2 });
    expect([computed.reused, calls]).toEqual([0, 4]);
    for (const entry of entries([0, 1, 2, 3])) expect(existsSync(featureFile(dir, 'backbone-a', entry.key))).toBe(true);

    // Another process: nothing in memory, everything on disk.
    const second = createDiskFeatureStore(dir);
    claimFeatureStore(second, 'backbone-a');
    calls = 0;
    const read = await computeFeaturesThrough(second, counting(), entries([3, 1, 0, 2, 4]), { batchSize: 2 });
    expect([read.reused, calls]).toEqual([4, 1]);
    const inMemory = createFeatureStore();
    claimFeatureStore(inMemory, 'backbone-a');
    const direct = await computeFeaturesThrough(inMemory, runner, entries([3, 1, 0, 2, 4]), { batchSize: 5 });
    expect(read.features.shapes).toEqual(direct.features.shapes);
    expect(Buffer.from(read.features.data[0]!.buffer).equals(Buffer.from(direct.features.data[0]!.buffer))).toBe(true);
  });

  it('keeps backbones apart: another fingerprint reuses nothing', async () => {
    const store = createDiskFeatureStore(join(root, 'shared'));
    claimFeatureStore(store, 'backbone-b');
    calls = 0;
    const result = await computeFeaturesThrough(store, counting(), entries([0, 1]), { batchSize: 2 });
    expect([result.reused, calls]).toEqual([0, 2]);
    expect(readdirSync(join(root, 'shared')).sort()).toEqual(['backbone-a', 'backbone-b']);
  });

  it('reports a damaged, cut or foreign file, computes it again and replaces it', async () => {
    const dir = join(root, 'damaged');
    const fill = createDiskFeatureStore(dir);
    claimFeatureStore(fill, 'fp');
    const reference = await computeFeaturesThrough(fill, runner, entries([0, 1, 2]), { batchSize: 3 });
    const [flipped, cut, foreign] = entries([0, 1, 2]).map((e) => featureFile(dir, 'fp', e.key));
    const bytes = readFileSync(flipped!);
    bytes[bytes.length - 5]! ^= 0x10;
    writeFileSync(flipped!, bytes);
    writeFileSync(cut!, readFileSync(cut!).subarray(0, 100));
    writeFileSync(foreign!, Buffer.concat([Buffer.from('NOTAFEAT'), readFileSync(foreign!).subarray(8)]));
    const reported: [string, string][] = [];
    const store = createDiskFeatureStore(dir, { onDamaged: (file, problem) => reported.push([file, problem]) });
    claimFeatureStore(store, 'fp');
    calls = 0;
    const again = await computeFeaturesThrough(store, counting(), entries([0, 1, 2]), { batchSize: 3 });
    expect([again.reused, calls]).toEqual([0, 3]);
    expect(reported).toEqual([
      [flipped, 'damaged: its sha256 does not match the one it records'],
      [cut, expect.stringMatching(/^100 bytes where \d+ were expected \(cut short, or another backbone's\)$/)],
      [foreign, 'not a feature file (wrong magic)'],
    ]);
    expect(Buffer.from(again.features.data[0]!.buffer).equals(Buffer.from(reference.features.data[0]!.buffer))).toBe(true);
    // Replaced: a third store reads all three back.
    const third = createDiskFeatureStore(dir, { onDamaged: (file) => reported.push([file, 'again']) });
    claimFeatureStore(third, 'fp');
    expect((await computeFeaturesThrough(third, runner, entries([0, 1, 2]))).reused).toBe(3);
    expect(reported).toHaveLength(3);
  });

  it('two stores filling the same folder at once leave one complete file per entry and no temporary files', async () => {
    const dir = join(root, 'race');
    const [a, b] = [createDiskFeatureStore(dir), createDiskFeatureStore(dir)];
    claimFeatureStore(a, 'fp');
    claimFeatureStore(b, 'fp');
    const [ra, rb] = await Promise.all([computeFeaturesThrough(a, runner, entries([0, 1, 2, 3, 4, 5]), { batchSize: 1 }), computeFeaturesThrough(b, runner, entries([5, 4, 3, 2, 1, 0]), { batchSize: 1 })]);
    expect(ra.reused + rb.reused).toBeLessThan(12);
    const files = readdirSync(join(dir, 'fp'), { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
    expect(files.map((f) => f.name).filter((n) => !n.endsWith('.f32'))).toEqual([]);
    expect(files).toHaveLength(6);
    const reader = createDiskFeatureStore(dir, { onDamaged: (file, problem) => expect.fail(`${file}: ${problem}`) });
    claimFeatureStore(reader, 'fp');
    expect((await computeFeaturesThrough(reader, runner, entries([0, 1, 2, 3, 4, 5]))).reused).toBe(6);
  });
});

describe('a fold trained on features read back from disk', () => {
  it('ends at exactly the weights of the fold trained with the in-memory store', async () => {
    const data = join(root, 'data');
    await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 2, folds: 3, size: 32 });
    const options = (out: string) => ({ data, out, fold: 1, model: 'mobilenet_v1', inputSize: [32, 32] as [number, number], batchSize: 8, seed: 2, dropout: 0, epochs: 2, views: 2, runtime: 'tfjs' as const });
    await trainFold(options(join(root, 'memory')), { quiet: true, featureStore: createFeatureStore() });
    const dir = join(root, 'fold-features');
    const first = await trainFold(options(join(root, 'disk-1')), { quiet: true, featureStore: createDiskFeatureStore(dir) });
    expect(first.featureEntries.reused).toBe(0);
    // A fresh store (another worker): every entry from disk.
    const second = await trainFold(options(join(root, 'disk-2')), { quiet: true, featureStore: createDiskFeatureStore(dir) });
    expect(second.featureEntries.computed).toBe(0);
    expect(second.featureEntries.reused).toBe(first.featureEntries.computed);
    const reference = await weightsOfRun(join(root, 'memory'));
    for (const run of ['disk-1', 'disk-2']) {
      const weights = await weightsOfRun(join(root, run));
      let worst = 0;
      for (const [name, values] of reference) values.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - weights.get(name)![i]!))));
      expect(worst, run).toBe(0);
      expect(readFileSync(join(root, run, 'predictions.csv'), 'utf8')).toBe(readFileSync(join(root, 'memory', 'predictions.csv'), 'utf8'));
    }
  });
});
