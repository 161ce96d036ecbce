// Members built on one shared backbone (src/model_dir/member_models.ts): a fold ensemble whose
// members read their frozen weights from the same stored bytes builds that backbone once, and each
// member must still be exactly the model its own files describe: the same probabilities and the
// same Grad-CAM. Members that cannot share are built whole.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { gradCam } from '../../src/explain/gradcam.js';
import { layersModelFromFiles, layersModelToFiles, type LayersFiles } from '../../src/model_dir/layers_io.js';
import { buildMemberModels } from '../../src/model_dir/member_models.js';
import { SHARED_WEIGHTS_PATH } from '../../src/model_dir/names.js';
import { shareCommonWeights } from '../../src/model_dir/shared_weights.js';
import { tinyMember } from '../helpers/tiny_model.js';

/** A tiny model with the frozen convolutions of `trunkSeed` and the trainable classifier of `headSeed`. */
const member = (trunkSeed: number, headSeed: number): tfl.LayersModel => tinyMember(trunkSeed, headSeed, { frozenTrunk: true });

async function filesOf(models: tfl.LayersModel[]): Promise<LayersFiles[]> {
  const files = await Promise.all(models.map(layersModelToFiles));
  models.forEach((m) => m.dispose());
  return shareCommonWeights(files);
}

/** The weights every member reads from the shared file (what the page's fetch reports). */
function sharedNames(files: LayersFiles[]): Set<string> {
  const per = files.map((f) => new Set(f.modelJson.weightsManifest.filter((g) => g.paths.includes(SHARED_WEIGHTS_PATH)).flatMap((g) => g.weights.map((w) => w.name))));
  return new Set([...per[0]!].filter((name) => per.every((names) => names.has(name))));
}

const predict = (m: tfl.LayersModel, x: tf.Tensor): number[] => Array.from(tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync()));

beforeAll(async () => {
  await initEngine();
});

describe('buildMemberModels', () => {
  it('builds the backbone once for members that share it, each member exactly its own model (probabilities, Grad-CAM)', async () => {
    const files = await filesOf([member(1, 10), member(1, 11), member(1, 12)]);
    const names = sharedNames(files);
    expect(names.size).toBeGreaterThan(2);
    const start = tf.memory().numTensors;
    const built = await buildMemberModels(files, names);
    const whole = await Promise.all(files.map(layersModelFromFiles));
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 5);
    const one = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 6);
    for (const k of [0, 1, 2]) {
      expect(predict(built[k]!, x)).toEqual(predict(whole[k]!, x));
      for (const c of [0, 2]) expect(Array.from(gradCam(built[k]!, one, 'cam_conv', c).map)).toEqual(Array.from(gradCam(whole[k]!, one, 'cam_conv', c).map));
    }
    // The heads differ, so do the members.
    expect(predict(built[1]!, x)).not.toEqual(predict(built[0]!, x));
    // One backbone: the later members use the first one's layers (and weights); their heads are their own.
    for (const k of [1, 2]) {
      expect(built[k]!.getLayer('conv1')).toBe(built[0]!.getLayer('conv1'));
      expect(built[k]!.getLayer('cam_conv')).toBe(built[0]!.getLayer('cam_conv'));
      expect(built[k]!.getLayer('classifier')).not.toBe(built[0]!.getLayer('classifier'));
    }
    const weightTensors = (models: tfl.LayersModel[]) => new Set(models.flatMap((m) => m.weights.map((w) => w.read().id))).size;
    expect(weightTensors(built)).toBeLessThan(weightTensors(whole));
    whole.forEach((m) => m.dispose());
    // Disposing a member leaves the backbone to the others; disposing all frees everything.
    built[2]!.dispose();
    expect(predict(built[1]!, x)).toEqual(predict(built[1]!, x));
    built[1]!.dispose();
    built[0]!.dispose();
    tf.dispose([x, one]);
    expect(tf.memory().numTensors).toBe(start);
  });

  it('builds members whole when their backbone weights are not read from the same bytes, or differ', async () => {
    const files = await filesOf([member(1, 10), member(1, 11)]);
    const apart = await buildMemberModels(files, new Set());
    expect(apart[1]!.getLayer('conv1')).not.toBe(apart[0]!.getLayer('conv1'));
    apart.forEach((m) => m.dispose());
    const differ = await filesOf([member(1, 10), member(2, 11)]);
    const built = await buildMemberModels(differ, sharedNames(differ));
    expect(built[1]!.getLayer('conv1')).not.toBe(built[0]!.getLayer('conv1'));
    const x = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 7);
    const whole = await layersModelFromFiles(differ[1]!);
    expect(predict(built[1]!, x)).toEqual(predict(whole, x));
    [...built, whole].forEach((m) => m.dispose());
    x.dispose();
  });
});
