// Weights every member of an ensemble has in common are stored once (src/model_dir/shared_weights.ts):
// a fold ensemble that shares a frozen backbone writes it once, loads to exactly the models it was
// made from, checks the shared file like any other, and a folder without common weights is as before.
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { layersModelToFiles, weightFileNames } from '../../src/model_dir/layers_io.js';
import { loadModelDir, readModelMeta, saveModelDir } from '../../src/model_dir/model_dir.js';
import { shareCommonWeights, weightEntries } from '../../src/model_dir/shared_weights.js';
import { tinyCfg, tinyMember, TINY_CLASSES } from '../helpers/tiny_model.js';

/** A tiny model with the convolutions of `trunkSeed` and the classifier of `headSeed`. */
const member = (trunkSeed: number, headSeed: number): tfl.LayersModel => tinyMember(trunkSeed, headSeed);

const predict = (m: tfl.LayersModel, x: tf.Tensor): number[] => Array.from(tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync()));

beforeAll(async () => {
  await initEngine();
});

describe('shared weights', () => {
  it('writes a common backbone once and loads every member exactly as it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pocovid-shared-'));
    const members = [member(1, 10), member(1, 11), member(1, 12)];
    await saveModelDir(dir, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members });
    const meta = readModelMeta(dir);
    expect(Object.keys(meta.files!).sort()).toEqual([
      'member-0/model.json', 'member-0/weights.bin', 'member-1/model.json', 'member-1/weights.bin', 'member-2/model.json', 'member-2/weights.bin', 'shared-weights.bin',
    ]);
    // conv1 and cam_conv (kernels and biases) once; each member keeps its 8 × 3 + 3 classifier floats.
    expect(statSync(join(dir, 'shared-weights.bin')).size).toBe(4 * (3 * 3 * 3 * 4 + 4 + 3 * 3 * 4 * 8 + 8));
    expect(statSync(join(dir, 'member-1', 'weights.bin')).size).toBe(4 * (8 * 3 + 3));
    const json = JSON.parse(readFileSync(join(dir, 'member-1', 'model.json'), 'utf8'));
    expect(json.weightsManifest.map((g: { paths: string[] }) => g.paths)).toEqual([['../shared-weights.bin'], ['weights.bin']]);
    const loaded = await loadModelDir(dir);
    const x = tf.randomUniform([3, 32, 32, 3], -1, 1, 'float32', 5);
    loaded.members.forEach((m, k) => expect(predict(m, x)).toEqual(predict(members[k]!, x)));
    expect(predict(loaded.members[0]!, x)).not.toEqual(predict(loaded.members[1]!, x));
    // The shared file is checked like every member file.
    const bytes = readFileSync(join(dir, 'shared-weights.bin'));
    bytes[10] = bytes[10]! ^ 1;
    writeFileSync(join(dir, 'shared-weights.bin'), bytes);
    await expect(loadModelDir(dir)).rejects.toThrow(/shared-weights\.bin: .*sha256/);
    tf.dispose(x);
    [...members, ...loaded.members].forEach((m) => m.dispose());
  });

  it('leaves a single member, and members with little in common, as they were', async () => {
    const one = await layersModelToFiles(member(1, 10));
    expect(shareCommonWeights([one])[0]).toBe(one);
    const [a, b] = [await layersModelToFiles(member(1, 10)), await layersModelToFiles(member(2, 11))];
    const kept = shareCommonWeights([a, b]);
    expect(kept[0]).toBe(a);
    expect(kept[1]).toBe(b);
    const dir = mkdtempSync(join(tmpdir(), 'pocovid-shared-'));
    await saveModelDir(dir, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [member(3, 1), member(4, 1)] });
    // Only the classifier (and the zero conv biases) are common here: not worth a shared file.
    expect(existsSync(join(dir, 'shared-weights.bin'))).toBe(false);
    expect(Object.keys(readModelMeta(dir).files!)).toHaveLength(4);
  });

  it('re-shares members that are already stored shared, to the same bytes', async () => {
    const members = await Promise.all([member(1, 10), member(1, 11)].map(layersModelToFiles));
    const once = shareCommonWeights(members);
    const twice = shareCommonWeights(once);
    expect(twice.map((m) => m.modelJson.weightsManifest)).toEqual(once.map((m) => m.modelJson.weightsManifest));
    const bytesByName = (files: (typeof members)[number]) => Object.fromEntries(weightEntries(files).map((e) => [e.spec.name, Array.from(e.bytes)]));
    expect(bytesByName(twice[1]!)).toEqual(bytesByName(members[1]!));
  });

  it('allows a member to name only the folder\'s shared file outside its own folder', () => {
    const manifest = (paths: string[]) => ({ modelTopology: {}, weightsManifest: [{ paths, weights: [] }] }) as never;
    expect(weightFileNames(manifest(['../shared-weights.bin', 'weights.bin']))).toEqual(['../shared-weights.bin', 'weights.bin']);
    expect(() => weightFileNames(manifest(['../other.bin']))).toThrow(/not a plain file name/);
    expect(() => weightFileNames(manifest(['../../shared-weights.bin']))).toThrow(/not a plain file name/);
  });
});
