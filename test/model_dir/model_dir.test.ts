import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { collectRun, loadModel } from '../../src/model_dir/run.js';
import { loadModelDir, saveModelDir, writeModelDirFiles } from '../../src/model_dir/model_dir.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

beforeAll(async () => {
  await initEngine();
});

function probe(): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from({ length: 2 * 32 * 32 * 3 }, (_, i) => Math.sin(i * 0.37)), [2, 32, 32, 3]);
}

describe('model folder', () => {
  it('round-trips members, classes and config; predictions are identical', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pocovid-md-'));
    const a = tinyModel(1);
    const b = tinyModel(2);
    await saveModelDir(dir, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [a, b], source: { test: true } });
    const meta = JSON.parse(readFileSync(join(dir, 'pocovid.json'), 'utf8'));
    expect(meta).toMatchObject({ format: 'pocovid-model', version: 1, name: 'tiny', classes: TINY_CLASSES, members: ['member-0', 'member-1'], aggregation: 'mean' });
    const loaded = await loadModelDir(dir);
    expect(loaded.members).toHaveLength(2);
    const x = probe();
    for (const [k, original] of [a, b].entries()) {
      const want = (original.predict(x) as tf.Tensor).arraySync() as number[][];
      const got = (loaded.members[k]!.predict(x) as tf.Tensor).arraySync() as number[][];
      got.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(want[i]![j]!, 6)));
    }
  });

  it('rejects a folder without pocovid.json, a bad description and a weight path outside the folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pocovid-md-'));
    await expect(loadModelDir(dir)).rejects.toThrow(/not a model folder \(no pocovid.json\)/);
    await saveModelDir(dir, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(1)] });
    const metaFile = join(dir, 'pocovid.json');
    const good = readFileSync(metaFile, 'utf8');
    writeFileSync(metaFile, good.replace('"pocovid-model"', '"other"'));
    await expect(loadModelDir(dir)).rejects.toThrow(/pocovid.json: not a valid pocovid model description: format/);
    // Each problem in words (zod's English messages, also in the page's small zod build), with its place.
    const parsed = JSON.parse(good) as { classes: string[]; cfg: { inputSize: number[] } };
    writeFileSync(metaFile, JSON.stringify({ ...parsed, classes: ['covid'], cfg: { ...parsed.cfg, inputSize: [32, 1.5] } }));
    await expect(loadModelDir(dir)).rejects.toThrow(/classes: Too small: expected array to have >=2 items; cfg\.inputSize\.1: Invalid input: expected int, received number/);
    writeFileSync(metaFile, good);
    const modelFile = join(dir, 'member-0', 'model.json');
    const escaping = readFileSync(modelFile, 'utf8').replace('"weights.bin"', '"../../etc/passwd"');
    writeFileSync(modelFile, escaping);
    // Caught first as a file changed since it was written; with its digest updated to match (a
    // deliberate edit), the manifest's path check still refuses it.
    await expect(loadModelDir(dir)).rejects.toThrow(/member-0\/model\.json: damaged/);
    const meta = JSON.parse(good);
    meta.files['member-0/model.json'] = { sha256: createHash('sha256').update(escaping).digest('hex'), bytes: Buffer.byteLength(escaping) };
    writeFileSync(metaFile, JSON.stringify(meta));
    await expect(loadModelDir(dir)).rejects.toThrow(/is not a plain file name/);
  });

  it('rejects a model whose output count differs from its classes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pocovid-md-'));
    await saveModelDir(dir, { name: 'tiny', classes: ['a', 'b'], cfg: tinyCfg(), members: [tinyModel(1)] });
    await expect(loadModelDir(dir)).rejects.toThrow(/model has 3 outputs but pocovid.json names 2 classes/);
  });

  it('reads a run as the ensemble of its folds, or one fold', async () => {
    const run = mkdtempSync(join(tmpdir(), 'pocovid-run-'));
    mkdirSync(join(run, 'fold-0'));
    writeFileSync(join(run, 'config.json'), JSON.stringify({ model: 'tiny' }));
    for (const k of [0, 1, 2]) {
      await saveModelDir(join(run, `fold-${k}`, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(10 + k)] });
    }
    expect((await loadModel(run)).members).toHaveLength(3);
    const one = collectRun(run, 1);
    expect(one.members).toHaveLength(1);
    expect(one.info.source).toMatchObject({ folds: [1], config: { model: 'tiny' } });
    expect(() => collectRun(run, 7)).toThrow(/has no fold 7; folds present: 0, 1, 2/);
    const out = mkdtempSync(join(tmpdir(), 'pocovid-exp-'));
    await writeModelDirFiles(out, collectRun(run).info, collectRun(run).members);
    expect((await loadModelDir(out)).meta.members).toEqual(['member-0', 'member-1', 'member-2']);
  });
});
