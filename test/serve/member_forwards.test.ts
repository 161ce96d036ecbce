// The page's shared backbone (src/serve/page/member_forwards.ts): members whose frozen part is the
// same network with the same weights run it once per batch, and every member's probabilities must
// be exactly its own forward pass; members that differ in their frozen part must run whole.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { disposeBuiltModel } from '../../src/models/cut.js';
import { memberForwards, pageMember } from '../../src/serve/page/member_forwards.js';
import { tinyModel } from '../helpers/tiny_model.js';

const SHAPE: [number, number, number] = [32, 32, 3];

/** A tiny model whose convolutions come from `trunkSeed` (frozen) and whose classifier from `headSeed`. */
function member(trunkSeed: number, headSeed: number): tfl.LayersModel {
  const model = tinyModel(trunkSeed, { hidden: false });
  const head = tinyModel(headSeed, { hidden: false });
  model.getLayer('classifier').setWeights(head.getLayer('classifier').getWeights());
  head.dispose();
  for (const layer of model.layers) layer.trainable = layer.name === 'classifier';
  return model;
}

beforeAll(async () => {
  await initEngine();
});

describe('memberForwards', () => {
  it('shares a frozen backbone the members have in common, with each member\'s exact probabilities', async () => {
    const start = tf.memory().numTensors;
    const members = [member(1, 10), member(1, 11), member(1, 12)].map(pageMember);
    const { forwards, sharedTrunk } = memberForwards(members, SHAPE);
    expect(sharedTrunk).toBe(true);
    const batch = tf.randomUniform([4, ...SHAPE], -1, 1, 'float32', 3);
    const flat = batch.dataSync() as Float32Array;
    const outputs: Float32Array[] = [];
    for (const [m, forward] of forwards.entries()) {
      const got = await forward(flat, 4);
      const own = tf.tidy(() => (members[m]!.model.predict(batch) as tf.Tensor).dataSync() as Float32Array);
      expect(Array.from(got)).toEqual(Array.from(own));
      outputs.push(got);
    }
    // The heads differ, so the members do too: sharing the trunk did not share the answer.
    expect(Array.from(outputs[0]!)).not.toEqual(Array.from(outputs[1]!));
    // A second batch is not answered from the first one's features.
    const other = tf.randomUniform([2, ...SHAPE], -1, 1, 'float32', 4);
    const got = await forwards[1]!(other.dataSync() as Float32Array, 2);
    expect(Array.from(got)).toEqual(Array.from(tf.tidy(() => (members[1]!.model.predict(other) as tf.Tensor).dataSync())));
    tf.dispose([batch, other]);
    members.forEach(disposeBuiltModel);
    // At most the last batch's features stay (one 2 × 8 tensor).
    expect(tf.memory().numTensors - start).toBeLessThanOrEqual(1);
  });

  it('runs members whole when their frozen parts differ, or when there is nothing to share', async () => {
    const differ = [member(1, 10), member(2, 11)].map(pageMember);
    expect(memberForwards(differ, SHAPE).sharedTrunk).toBe(false);
    const one = [member(1, 10)].map(pageMember);
    expect(memberForwards(one, SHAPE).sharedTrunk).toBe(false);
    // Everything trainable: the cut is at the input, no backbone to share.
    const whole = [tinyModel(5), tinyModel(5)].map(pageMember);
    expect(whole.every((m) => m.backbone === undefined)).toBe(true);
    expect(memberForwards(whole, SHAPE).sharedTrunk).toBe(false);
    [...differ, ...one, ...whole].forEach(disposeBuiltModel);
  });

  it('does not compare again the values of weights read from the same stored bytes, and compares the rest', () => {
    // Same layers and configuration; the second member's frozen weights changed.
    const second = member(1, 11);
    for (const name of ['conv1', 'cam_conv']) {
      const layer = second.getLayer(name);
      const shifted = layer.getWeights().map((w) => tf.tidy(() => tf.add(w, 0.5)));
      layer.setWeights(shifted);
      tf.dispose(shifted);
    }
    const differ = [member(1, 10), second].map(pageMember);
    expect(memberForwards(differ, SHAPE).sharedTrunk).toBe(false);
    const names = differ[0]!.backbone!.weights.map((w) => w.originalName);
    expect(names.length).toBeGreaterThan(1);
    // Every differing weight declared as the same bytes: taken as shared without reading values.
    expect(memberForwards(differ, SHAPE, new Set(names)).sharedTrunk).toBe(true);
    // Only some of them: the others are still compared, and they differ.
    expect(memberForwards(differ, SHAPE, new Set(names.slice(1))).sharedTrunk).toBe(false);
    differ.forEach(disposeBuiltModel);
  });
});
