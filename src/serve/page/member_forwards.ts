// The members' forward passes in the page, with one saving: members whose frozen part is the same
// network with the same weights share it. The default recipe's fold ensemble is such a case — every
// fold keeps ImageNet's frozen MobileNet and trains only its logistic head — so five members cost
// one backbone pass per frame plus five 1024 × 3 heads instead of five backbones. It is exact: the
// same operations on the same numbers (tested against each member's own forward pass). Members
// that differ anywhere in their frozen part (fine-tuned blocks, other backbones) run whole.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { MemberForward } from '../../decision/classify.js';
import { cutModel } from '../../models/cut.js';
import { sameTrunk } from '../../models/same_trunk.js';

/** A member as the page keeps it: the flat model (Grad-CAM, MC dropout) and its cut, when it has one. */
export interface PageMember {
  model: tfl.LayersModel;
  backbone?: tfl.LayersModel;
  head?: tfl.LayersModel;
}

/** The member cut at its trainable part (as the trainer and the adaptation cut it), or whole. */
export function pageMember(model: tfl.LayersModel): PageMember {
  try {
    const { backbone, head } = cutModel(model);
    return backbone ? { model, backbone, head } : { model };
  } catch {
    return { model }; // nothing trainable to cut at: it runs whole
  }
}

/** The values of a model's output, its tensors freed. */
async function valuesOf(predict: () => tf.Tensor): Promise<Float32Array> {
  const y = tf.tidy(predict);
  try {
    return (await y.data()) as Float32Array;
  } finally {
    y.dispose();
  }
}

function wholeForward(model: tfl.LayersModel, shape: [number, number, number]): MemberForward {
  return (batch, n) => valuesOf(() => model.predict(tf.tensor4d(batch, [n, ...shape])) as tf.Tensor);
}

/**
 * Each member's forward pass, in member order. When every member has a cut and their backbones
 * are the same (`sameBytes`: weights every member read from the same stored bytes, see sameTrunk),
 * the first backbone runs once per batch (the decision core passes every member
 * the same batch in turn) and each member's head runs on its output.
 */
export function memberForwards(members: readonly PageMember[], shape: [number, number, number], sameBytes?: ReadonlySet<string>): { forwards: MemberForward[]; sharedTrunk: boolean } {
  const trunk = members[0]?.backbone;
  const shared = members.length > 1 && trunk !== undefined && members.every((m) => m.backbone && m.head && sameTrunk(trunk, m.backbone, sameBytes));
  if (!shared) return { forwards: members.map((m) => wholeForward(m.model, shape)), sharedTrunk: false };
  let lastBatch: Float32Array | undefined;
  let features: tf.Tensor[] = [];
  const featuresOf = (batch: Float32Array, n: number): tf.Tensor[] => {
    if (batch !== lastBatch) {
      tf.dispose(features);
      features = tf.tidy(() => {
        const out = trunk.predict(tf.tensor4d(batch, [n, ...shape]));
        return Array.isArray(out) ? out : [out];
      });
      lastBatch = batch;
    }
    return features;
  };
  const forwards = members.map(
    (m): MemberForward =>
      (batch, n) => {
        const inputs = featuresOf(batch, n);
        return valuesOf(() => m.head!.predict(inputs.length === 1 ? inputs[0]! : inputs) as tf.Tensor);
      },
  );
  return { forwards, sharedTrunk: true };
}
