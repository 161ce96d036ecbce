// An ensemble's members as TF.js models, building a shared backbone once. The default recipe's
// fold members keep ImageNet's frozen MobileNet and differ only in their logistic heads, and their
// backbone weights come from the very same bytes (an export's shared-weights.bin, checked once):
// building, initialising and filling that backbone for every member cost the page ~0.16 s each.
// A member with the first one's topology whose every backbone weight is among `sharedNames` is
// built as the first one's backbone layers under a head of its own (cut.ts withNewHead), with its
// own head weights; any other member is built whole. Browser-safe.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { cutModel, withNewHead } from '../models/cut.js';
import { layersModelFromFiles, type LayersFiles } from './layers_io.js';
import { weightEntries } from './shared_weights.js';

/** The backbone weights' names of `model` (those before its cut), or undefined when it has no cut. */
function backboneWeightNames(model: tfl.LayersModel): string[] | undefined {
  try {
    const { backbone, head } = cutModel(model);
    // The cut's head model applied the head layers again: dispose it, or they outlive the member.
    if (head !== model) head.dispose();
    return backbone?.weights.map((w) => w.originalName);
  } catch {
    return undefined; // nothing trainable to cut at
  }
}

/** Member `files` as the first member's backbone under its own head; undefined when it cannot be (then it is built whole). */
function onSharedBackbone(first: tfl.LayersModel, firstFiles: LayersFiles, files: LayersFiles, name: string, shareable: boolean): tfl.LayersModel | undefined {
  if (!shareable || JSON.stringify(files.modelJson.modelTopology) !== JSON.stringify(firstFiles.modelJson.modelTopology)) return undefined;
  const entries = new Map(weightEntries(files).map((e) => [e.spec.name, e]));
  const built = withNewHead(first, name);
  try {
    for (const layer of built.headLayers) {
      const values = layer.weights.map((w) => {
        const entry = entries.get(w.originalName);
        if (!entry) throw new Error(`weight ${w.originalName} is not in the member's files`);
        const decoded = tf.io.decodeWeights(entry.bytes.slice().buffer, [entry.spec]);
        return decoded[entry.spec.name]!;
      });
      layer.setWeights(values);
      tf.dispose(values);
    }
    return built.model;
  } catch (err) {
    built.model.dispose();
    throw err;
  }
}

/**
 * Builds every member from its files. `sharedNames`: the weights every member read from the same
 * stored bytes (src/serve/page/model.ts FetchedModel.sharedWeightNames).
 */
export async function buildMemberModels(memberFiles: readonly LayersFiles[], sharedNames: ReadonlySet<string>): Promise<tfl.LayersModel[]> {
  const members: tfl.LayersModel[] = [];
  try {
    let shareable = false;
    for (const [index, files] of memberFiles.entries()) {
      const first = members[0];
      const shared = first ? onSharedBackbone(first, memberFiles[0]!, files, `${first.name}_member${index}`, shareable) : undefined;
      members.push(shared ?? (await layersModelFromFiles(files)));
      if (index === 0) {
        const backbone = backboneWeightNames(members[0]!);
        shareable = backbone !== undefined && backbone.length > 0 && backbone.every((n) => sharedNames.has(n));
      }
    }
    return members;
  } catch (err) {
    members.forEach((m) => m.dispose());
    throw err;
  }
}
