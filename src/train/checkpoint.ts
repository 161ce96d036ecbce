// Checkpoints: the last epoch (to resume a killed run) and the best epoch so far (model selection).
// Files are written atomically, so a kill during a save leaves the previous checkpoint intact; a
// checkpoint damaged afterwards (or holding NaN) stops the resume with an error naming its file.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { BuiltModel } from '../models/types.js';
import { decodeSafetensors, encodeSafetensors, type SafetensorsContents } from '../models/weights/safetensors.js';
import type { NamedTensor } from '../models/weights/tensors.js';
import { modelWeightsByName, readModelWeights } from '../models/weights/load.js';
import { BadInputError } from '../errors.js';
import { writeFileAtomic, writeJsonAtomicSync } from '../util/atomic.js';
import { digestOf, fileDigestSchema, readVerified } from '../util/integrity.js';
import { readJsonFile } from '../util/json_file.js';
import { checkFiniteTensors } from './finite.js';
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

// A checkpoint is a generation of files named by epoch (last-e0004.safetensors, optimizer-e0004...,
// best-e0002...) plus state.json, which names them with their sha256 and size. state.json is
// replaced last and older generations are removed only after it: a kill at any moment leaves a
// state.json whose files are all present and intact, and a file damaged later is caught by its
// digest before a single weight is restored.
const STATE = 'state.json';
// Names used before generations existed (read when resuming a run made then).
const LEGACY = { last: 'last.safetensors', best: 'best.safetensors', optimizer: 'optimizer.safetensors' } as const;

const fileRecordSchema = z.object({ ...fileDigestSchema.shape, name: z.string().regex(/^[A-Za-z0-9._-]+\.safetensors$/) });
type FileRecord = z.infer<typeof fileRecordSchema>;

const stateSchema = z
  .object({
    bestEpoch: z.number().int().min(-1),
    files: z.object({ last: fileRecordSchema, optimizer: fileRecordSchema, best: fileRecordSchema.optional() }).optional(),
  })
  .passthrough();

async function writeRecorded(dir: string, name: string, bytes: Uint8Array): Promise<FileRecord> {
  await writeFileAtomic(join(dir, name), bytes);
  return { name, ...digestOf(bytes) };
}

const generation = (kind: string, epoch: number): string => `${kind}-e${String(epoch).padStart(4, '0')}.safetensors`;

export async function saveCheckpoint(
  dir: string,
  built: BuiltModel,
  optimizer: ScheduledAdam,
  state: object,
  best: WeightSnapshot | undefined,
): Promise<void> {
  const epoch = (state as { epoch?: unknown }).epoch;
  const tag = typeof epoch === 'number' ? epoch : Date.now();
  const last = snapshotWeights(built.model, -1);
  const files: { last: FileRecord; optimizer: FileRecord; best?: FileRecord } = {
    last: await writeRecorded(dir, generation('last', tag), encodeSafetensors(last.tensors, { kind: 'last' })),
    optimizer: undefined as unknown as FileRecord,
  };
  if (best) files.best = await writeRecorded(dir, generation('best', best.epoch), encodeSafetensors(best.tensors, { kind: 'best', epoch: String(best.epoch) }));
  // Adam's moments are order-matched to the trainable variables, so they are stored by position.
  const optimizerWeights = await optimizer.getWeights();
  const entries: [string, NamedTensor][] = optimizerWeights.map((w, i) => [
    `${String(i).padStart(4, '0')}:${w.name}`,
    { shape: w.tensor.shape.length ? [...w.tensor.shape] : [1], data: Float32Array.from(w.tensor.dataSync() as Float32Array) },
  ]);
  // getWeights() hands out the moment variables themselves plus a NEW scalar for the step count.
  optimizerWeights.filter((w) => w.name === 'iter').forEach((w) => w.tensor.dispose());
  files.optimizer = await writeRecorded(dir, generation('optimizer', tag), encodeSafetensors(entries, { kind: 'optimizer' }));
  // state.json last: it is the marker that the files it names form a complete checkpoint.
  writeJsonAtomicSync(join(dir, STATE), { ...state, bestEpoch: best?.epoch ?? -1, files });
  const keep = new Set([STATE, ...Object.values(files).map((f) => f.name)]);
  for (const name of readdirSync(dir)) if (name.endsWith('.safetensors') && !keep.has(name)) rmSync(join(dir, name), { force: true });
}

const RESTART_HINT = (dir: string) => `delete ${dir} to train this fold again from its first epoch`;

/** A checkpoint file, checked against state.json's record of it, decoded, every value finite. */
function readCheckpointFile(dir: string, record: FileRecord | undefined, legacyName: string): SafetensorsContents {
  const statePath = join(dir, STATE);
  const file = join(dir, record?.name ?? legacyName);
  let bytes: Uint8Array;
  if (record) bytes = readVerified(file, record, statePath, RESTART_HINT(dir));
  else {
    if (!existsSync(file)) throw new BadInputError(file, `missing, but ${statePath} needs it; ${RESTART_HINT(dir)}`);
    bytes = new Uint8Array(readFileSync(file));
  }
  const contents = decodeSafetensors(bytes, file);
  checkFiniteTensors(contents.tensors, file, RESTART_HINT(dir));
  return contents;
}

export async function loadCheckpoint(
  dir: string,
  built: BuiltModel,
  optimizer: ScheduledAdam,
): Promise<{ state: unknown; best: WeightSnapshot | undefined; files: string[] } | undefined> {
  const statePath = join(dir, STATE);
  if (!existsSync(statePath)) return undefined;
  const state = readJsonFile(statePath, { what: 'the checkpoint state', hint: RESTART_HINT(dir), schema: stateSchema });
  // Every file is read and checked before anything is restored: a bad one leaves the model untouched.
  const last = readCheckpointFile(dir, state.files?.last, LEGACY.last);
  const saved = readCheckpointFile(dir, state.files?.optimizer, LEGACY.optimizer);
  let bestContents: SafetensorsContents | undefined;
  if (state.bestEpoch >= 0) {
    if (state.files && !state.files.best) throw new BadInputError(statePath, `names best epoch ${state.bestEpoch} but no file for it; ${RESTART_HINT(dir)}`);
    if (state.files || existsSync(join(dir, LEGACY.best))) bestContents = readCheckpointFile(dir, state.files?.best, LEGACY.best);
  }
  restoreWeights(built.model, last);
  const weights = [...saved.tensors.entries()].map(([key, t]) => {
    const name = key.slice(key.indexOf(':') + 1);
    // The iteration counter is a scalar; safetensors stored it as [1].
    const tensor = name === 'iter' ? tf.scalar(t.data[0]!) : tf.tensor(t.data, t.shape);
    return { name, tensor };
  });
  await optimizer.setWeights(weights);
  tf.dispose(weights.map((w) => w.tensor));
  let best: WeightSnapshot | undefined;
  if (bestContents) {
    const tensors = bestContents.tensors;
    best = { epoch: state.bestEpoch, tensors, dispose: () => tensors.clear() };
  }
  const files = [state.files?.last.name ?? LEGACY.last, state.files?.optimizer.name ?? LEGACY.optimizer].map((name) => join(dir, name));
  return { state, best, files };
}
