// An ensemble's members as TF.js models, building a shared backbone once. The default recipe's
// fold members keep ImageNet's frozen MobileNet and differ only in their logistic heads, and their
// backbone weights come from the very same bytes (an export's shared-weights.bin, checked once):
// building, initialising and filling that backbone for every member cost the page ~0.16 s each.
// A member with the first one's topology whose every backbone weight is among `sharedNames` is
// built as the first one's backbone layers under a head of its own (cut.ts withNewHead), with its
// own head weights; any other member is built whole. Browser-safe.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { backboneWeights, withNewHead } from '../models/cut.js';
import { layersModelFromFiles, type LayersFiles } from './layers_io.js';
import { weightEntries } from './shared_weights.js';

/** Member `files` as the first member's backbone under its own head (the first's topology given as JSON text); undefined when it cannot be (then it is built whole). */
function onSharedBackbone(first: tfl.LayersModel, firstTopology: string, files: LayersFiles, name: string): tfl.LayersModel | undefined {
  if (JSON.stringify(files.modelJson.modelTopology) !== firstTopology) return undefined;
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

/** Whether every backbone weight of `model` is among `sharedNames` (false when it has no cut, or an empty backbone). */
function backboneIsShared(model: tfl.LayersModel, sharedNames: ReadonlySet<string>): boolean {
  let backbone;
  try {
    backbone = backboneWeights(model);
  } catch {
    return false; // nothing trainable to cut at
  }
  return backbone.length > 0 && backbone.every((w) => sharedNames.has(w.originalName));
}

/**
 * Builds every member from its files. `sharedNames`: the weights every member read from the same
 * stored bytes (src/serve/page/model.ts FetchedModel.sharedWeightNames).
 */
export async function buildMemberModels(memberFiles: readonly LayersFiles[], sharedNames: ReadonlySet<string>): Promise<tfl.LayersModel[]> {
  const members: tfl.LayersModel[] = [];
  try {
    const [firstFiles, ...others] = memberFiles;
    if (!firstFiles) return members;
    const first = await layersModelFromFiles(firstFiles);
    members.push(first);
    const firstTopology = backboneIsShared(first, sharedNames) ? JSON.stringify(firstFiles.modelJson.modelTopology) : undefined;
    for (const [k, files] of others.entries()) {
      const shared = firstTopology === undefined ? undefined : onSharedBackbone(first, firstTopology, files, `${first.name}_member${k + 1}`);
      members.push(shared ?? (await layersModelFromFiles(files)));
    }
    return members;
  } catch (err) {
    members.forEach((m) => m.dispose());
    throw err;
  }
}
