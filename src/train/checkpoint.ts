// Checkpoints: the last epoch (to resume a killed run) and the best epoch so far (model selection).
// Files are written atomically, so a kill during a save leaves the previous checkpoint intact.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { BuiltModel } from '../models/types.js';
import { readSafetensors, writeSafetensors } from '../models/weights/safetensors.js';
import type { NamedTensor } from '../models/weights/tensors.js';
import { modelWeightsByName, readModelWeights } from '../models/weights/load.js';
import { writeJsonAtomicSync } from '../util/atomic.js';
import type { ScheduledAdam } from './optimizer.js';

/** A copy of every weight of a model (values, not tensors: nothing to dispose on the engine). */
export interface WeightSnapshot {
  epoch: number;
  tensors: Map<string, NamedTensor>;
  dispose(): void;
}

// Weights are keyed by layer and weight name ("block5_conv3/kernel"), not by TF.js variable names,
// which get suffixes ("_2") when several models are built in one process.
export function snapshotWeights(model: tfl.LayersModel, epoch: number): WeightSnapshot {
  const tensors = readModelWeights(model);
  return { epoch, tensors, dispose: () => tensors.clear() };
}

export function restoreWeights(model: tfl.LayersModel, snapshot: { tensors: Map<string, NamedTensor> }): void {
  const missing: string[] = [];
  for (const [name, weight] of modelWeightsByName(model)) {
    const saved = snapshot.tensors.get(name);
    if (!saved) {
      missing.push(name);
      continue;
    }
    const value = tf.tensor(saved.data, saved.shape);
    weight.write(value);
    value.dispose();
  }
  if (missing.length) throw new Error(`checkpoint lacks weights: ${missing.join(', ')}`);
}

const LAST = 'last.safetensors';
const BEST = 'best.safetensors';
const OPTIMIZER = 'optimizer.safetensors';
const STATE = 'state.json';

export async function saveCheckpoint(
  dir: string,
  built: BuiltModel,
  optimizer: ScheduledAdam,
  state: object,
  best: WeightSnapshot | undefined,
): Promise<void> {
  const last = snapshotWeights(built.model, -1);
  await writeSafetensors(join(dir, LAST), last.tensors, { kind: 'last' });
  if (best) await writeSafetensors(join(dir, BEST), best.tensors, { kind: 'best', epoch: String(best.epoch) });
  // Adam's moments are order-matched to the trainable variables, so they are stored by position.
  const optimizerWeights = await optimizer.getWeights();
  const entries: [string, NamedTensor][] = optimizerWeights.map((w, i) => [
    `${String(i).padStart(4, '0')}:${w.name}`,
    { shape: w.tensor.shape.length ? [...w.tensor.shape] : [1], data: Float32Array.from(w.tensor.dataSync() as Float32Array) },
  ]);
  // getWeights() hands out the moment variables themselves plus a NEW scalar for the step count.
  optimizerWeights.filter((w) => w.name === 'iter').forEach((w) => w.tensor.dispose());
  await writeSafetensors(join(dir, OPTIMIZER), entries, { kind: 'optimizer' });
  // state.json last: it is the marker that the files above form a complete checkpoint.
  writeJsonAtomicSync(join(dir, STATE), { ...state, bestEpoch: best?.epoch ?? -1 });
}

export async function loadCheckpoint(
  dir: string,
  built: BuiltModel,
  optimizer: ScheduledAdam,
): Promise<{ state: unknown; best: WeightSnapshot | undefined } | undefined> {
  const statePath = join(dir, STATE);
  if (!existsSync(statePath)) return undefined;
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as { bestEpoch: number };
  restoreWeights(built.model, await readSafetensors(join(dir, LAST)));
  const saved = await readSafetensors(join(dir, OPTIMIZER));
  const weights = [...saved.tensors.entries()].map(([key, t]) => {
    const name = key.slice(key.indexOf(':') + 1);
    // The iteration counter is a scalar; safetensors stored it as [1].
    const tensor = name === 'iter' ? tf.scalar(t.data[0]!) : tf.tensor(t.data, t.shape);
    return { name, tensor };
  });
  await optimizer.setWeights(weights);
  tf.dispose(weights.map((w) => w.tensor));
  let best: WeightSnapshot | undefined;
  if (state.bestEpoch >= 0 && existsSync(join(dir, BEST))) {
    const tensors = (await readSafetensors(join(dir, BEST))).tensors;
    best = { epoch: state.bestEpoch, tensors, dispose: () => tensors.clear() };
  }
  return { state, best };
}
