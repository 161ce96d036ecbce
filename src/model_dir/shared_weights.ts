// Weights every member of an ensemble has in common, stored once. The default recipe's fold models
// all keep ImageNet's frozen MobileNet (1.6 M weights) and differ only in their logistic heads
// (3 075 weights each): five members were five copies of the same backbone, 21.7 MB for the page
// to download where 4.4 MB says the same. A weight is common when every member has it under the
// same name with the same shape, dtype, quantisation and bytes; those go, in the first member's
// order, into <folder>/shared-weights.bin, which each member's model.json names as
// "../shared-weights.bin" in a manifest group of its own. TF.js loads weights by name, so every
// loader (Node, the page) builds exactly the model it built from separate copies.
// Browser-safe: bytes and JSON only.
import type * as tf from '@tensorflow/tfjs-core';
import { concatBytes } from '../util/bytes.js';
import { DTYPE_BYTES, WEIGHTS_FILE, type LayersFiles } from './layers_io.js';
import { SHARED_WEIGHTS_PATH } from './names.js';

type Spec = tf.io.WeightsManifestEntry;

/** Each weight of a member with its stored bytes, in manifest order. */
export function weightEntries(files: LayersFiles): { spec: Spec; bytes: Uint8Array }[] {
  const out: { spec: Spec; bytes: Uint8Array }[] = [];
  for (const group of files.modelJson.weightsManifest) {
    const data = concatBytes(group.paths.map((p) => files.weightFiles.get(p) ?? new Uint8Array(0)));
    let offset = 0;
    for (const spec of group.weights) {
      const per = DTYPE_BYTES[spec.quantization?.dtype ?? spec.dtype];
      if (per === undefined) throw new Error(`weight ${spec.name}: dtype ${spec.dtype} has no fixed size`);
      const size = per * spec.shape.reduce((a: number, b: number) => a * b, 1);
      out.push({ spec, bytes: data.subarray(offset, offset + size) });
      offset += size;
    }
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Same name, shape, dtype and quantisation. */
function sameSpec(a: Spec, b: Spec): boolean {
  return JSON.stringify([a.name, a.shape, a.dtype, a.quantization ?? null]) === JSON.stringify([b.name, b.shape, b.dtype, b.quantization ?? null]);
}

/**
 * The members with their common weights moved into one shared file (the same Uint8Array under
 * SHARED_WEIGHTS_PATH in every member's weightFiles), or unchanged when fewer than two members or
 * the common weights are less than half of a member's. Input members may already be stored either way.
 */
export function shareCommonWeights(members: readonly LayersFiles[]): LayersFiles[] {
  if (members.length < 2) return [...members];
  const entries = members.map(weightEntries);
  const byName = entries.map((list) => new Map(list.map((e) => [e.spec.name, e])));
  const common = entries[0]!.filter(({ spec, bytes }) =>
    byName.every((map) => {
      const e = map.get(spec.name);
      return e !== undefined && sameSpec(e.spec, spec) && sameBytes(e.bytes, bytes);
    }),
  );
  // Worth a file of its own only when it is most of a member (a backbone), not a few equal biases.
  const commonBytes = common.reduce((n, c) => n + c.bytes.byteLength, 0);
  const memberBytes = entries[0]!.reduce((n, e) => n + e.bytes.byteLength, 0);
  if (commonBytes === 0 || commonBytes * 2 < memberBytes) return [...members];
  const names = new Set(common.map((c) => c.spec.name));
  const shared = concatBytes(common.map((c) => c.bytes));
  return members.map((member, k) => {
    const own = entries[k]!.filter((e) => !names.has(e.spec.name));
    const weightsManifest: tf.io.WeightsManifestConfig = [{ paths: [SHARED_WEIGHTS_PATH], weights: common.map((c) => c.spec) }];
    const weightFiles = new Map<string, Uint8Array>([[SHARED_WEIGHTS_PATH, shared]]);
    if (own.length > 0) {
      weightsManifest.push({ paths: [WEIGHTS_FILE], weights: own.map((e) => e.spec) });
      weightFiles.set(WEIGHTS_FILE, concatBytes(own.map((e) => e.bytes)));
    }
    return { modelJson: { ...member.modelJson, weightsManifest }, weightFiles };
  });
}
