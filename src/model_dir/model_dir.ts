// The saved-model folder: what `pocovid export` and the trainer write and what predict, serve and
// the page load.
//   <dir>/pocovid.json          ModelDirMeta (format "pocovid-model", version 1; src/model_dir/meta.ts)
//   <dir>/member-<k>/model.json TF.js layers format, one per ensemble member
//   <dir>/member-<k>/weights.bin
//   <dir>/shared-weights.bin    weights every member has in common, stored once (shared_weights.ts)
// A training run holds one such folder per fold at <run>/fold-<k>/model/ (src/model_dir/run.ts
// reads a run as the ensemble of its folds).
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { BadInputError } from '../errors.js';
import type { GuardStats } from '../guard/guard.js';
import type { PretrainedCfg } from '../models/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { digestOf, readVerified, type FileDigests } from '../util/integrity.js';
import { parseJsonText, readJsonFile } from '../util/json_file.js';
import type { ConformalCalibration } from '../eval/conformal.js';
import { checkWeightBytes, layersModelFromFiles, layersModelToFiles, weightFileNames, type LayersFiles } from './layers_io.js';
import { MODEL_DIR_FORMAT, MODEL_DIR_VERSION, MODEL_META_FILE, metaSchema, parseModelMeta, type Aggregation, type ModelDirMeta } from './meta.js';
import { shareCommonWeights } from './shared_weights.js';

export interface SaveModelDirOptions {
  name: string;
  classes: string[];
  cfg: PretrainedCfg;
  members: tfl.LayersModel[];
  aggregation?: Aggregation;
  source?: Record<string, unknown>;
  guard?: GuardStats;
  conformal?: ConformalCalibration;
}

export interface LoadedModel {
  /** Folder it was read from (a model folder or a run). */
  path: string;
  meta: ModelDirMeta;
  members: tfl.LayersModel[];
}

/** Writes a model folder from in-memory models (used by the trainer for each fold, and by tests). */
export async function saveModelDir(dir: string, options: SaveModelDirOptions): Promise<ModelDirMeta> {
  if (options.members.length === 0) throw new Error('saveModelDir: at least one member model is needed');
  const files = [];
  for (const member of options.members) files.push(await layersModelToFiles(member));
  return writeModelDirFiles(dir, {
    name: options.name,
    classes: options.classes,
    cfg: options.cfg,
    aggregation: options.aggregation ?? 'mean',
    source: options.source ?? {},
    ...(options.guard ? { guard: options.guard } : {}),
    ...(options.conformal ? { conformal: options.conformal } : {}),
  }, files);
}

/** Writes a model folder from members already in file form (export copies them this way). */
export async function writeModelDirFiles(
  dir: string,
  info: Pick<ModelDirMeta, 'name' | 'classes' | 'cfg' | 'aggregation' | 'source' | 'guard' | 'conformal'>,
  given: LayersFiles[],
): Promise<ModelDirMeta> {
  // The weights every member has in common are written once (a fold ensemble's frozen backbone).
  const members = shareCommonWeights(given);
  const memberNames = members.map((_, k) => `member-${k}`);
  const files: FileDigests = {};
  const meta: ModelDirMeta = {
    format: MODEL_DIR_FORMAT,
    version: MODEL_DIR_VERSION,
    name: info.name,
    classes: info.classes,
    cfg: info.cfg,
    members: memberNames,
    aggregation: info.aggregation,
    createdAt: new Date().toISOString(),
    source: info.source,
    ...(info.guard ? { guard: info.guard } : {}),
    ...(info.conformal ? { conformal: info.conformal } : {}),
    files,
  };
  metaSchema.parse(meta);
  if (info.conformal && info.conformal.classes.join(',') !== info.classes.join(',')) {
    throw new Error(`conformal calibration for classes ${info.conformal.classes.join(', ')} in a model of ${info.classes.join(', ')}`);
  }
  for (const [k, member] of members.entries()) {
    const memberDir = join(dir, memberNames[k]!);
    // The digests are of the very bytes written, so a later change to any file is seen on load.
    for (const [name, data] of member.weightFiles) {
      const rel = posix.normalize(`${memberNames[k]}/${name}`);
      if (files[rel]) continue; // the shared file, written with the first member
      await writeFileAtomic(join(dir, rel), data);
      files[rel] = digestOf(data);
    }
    const modelJson = new TextEncoder().encode(JSON.stringify(member.modelJson));
    await writeFileAtomic(join(memberDir, 'model.json'), modelJson);
    files[`${memberNames[k]}/model.json`] = digestOf(modelJson);
  }
  // Written last: a folder with pocovid.json is complete, and its digests cover every member file.
  await writeFileAtomic(join(dir, MODEL_META_FILE), JSON.stringify(meta, null, 2) + '\n');
  return meta;
}

/**
 * Adds the digests of files written into a model folder after it was made (export --format onnx
 * writes <member>/model.onnx) to its pocovid.json, so that they can be checked like the others.
 */
export async function recordModelDirFiles(dir: string, written: { rel: string; data: Uint8Array }[]): Promise<void> {
  const meta = readModelMeta(dir);
  if (!meta.files) return; // an older folder records nothing; do not start a partial record
  for (const { rel, data } of written) meta.files[rel] = digestOf(data);
  await writeFileAtomic(join(dir, MODEL_META_FILE), JSON.stringify(meta, null, 2) + '\n');
}

/** Reads and validates <dir>/pocovid.json. */
export function readModelMeta(dir: string): ModelDirMeta {
  const file = join(dir, MODEL_META_FILE);
  if (!existsSync(file)) throw new BadInputError(dir, `not a model folder (no ${MODEL_META_FILE})`);
  const raw = readJsonFile(file, { what: 'the model description' });
  let meta: ModelDirMeta;
  try {
    meta = parseModelMeta(raw);
  } catch (err) {
    throw new BadInputError(file, (err as Error).message);
  }
  if (!meta.files) warnUnchecked(file);
  return meta;
}

/**
 * Puts a conformal calibration into an existing model folder's pocovid.json (a model refit on all
 * the data is calibrated after it is written, on the cross-validation's out-of-fold predictions).
 * pocovid.json is rewritten atomically; the members are not touched.
 */
export async function setModelConformal(dir: string, conformal: ConformalCalibration): Promise<ModelDirMeta> {
  const meta = readModelMeta(dir);
  if (conformal.classes.join(',') !== meta.classes.join(',')) {
    throw new BadInputError(join(dir, MODEL_META_FILE), `has classes ${meta.classes.join(', ')}; the calibration is for ${conformal.classes.join(', ')}`);
  }
  const updated: ModelDirMeta = { ...meta, conformal };
  metaSchema.parse(updated);
  await writeFileAtomic(join(dir, MODEL_META_FILE), JSON.stringify(updated, null, 2) + '\n');
  return updated;
}

const warnedUnchecked = new Set<string>();

/** Folders written before digests were recorded still load, with one warning each. */
function warnUnchecked(metaFile: string): void {
  if (warnedUnchecked.has(metaFile)) return;
  warnedUnchecked.add(metaFile);
  process.stderr.write(
    `warning: ${metaFile} records no sha256 of its member files (written by an older pocovid): damage to them can only be detected by size; export the run again to add them\n`,
  );
}

const DAMAGED_HINT = 'export the model again from its run, or retrain the fold';

/** One member file, checked against the digest pocovid.json records for it (when it records one). */
function readMemberFile(dir: string, given: string, digests: FileDigests | undefined, hint: string): Uint8Array {
  // "member-0/../shared-weights.bin" is recorded as "shared-weights.bin".
  const rel = posix.normalize(given);
  const path = join(dir, rel);
  const expected = digests?.[rel];
  if (expected) return readVerified(path, expected, join(dir, MODEL_META_FILE), hint);
  if (digests) throw new BadInputError(path, `not recorded in ${join(dir, MODEL_META_FILE)}: the folder was changed after it was written; ${hint}`);
  if (!existsSync(path)) throw new BadInputError(path, 'missing');
  return new Uint8Array(readFileSync(path));
}

/**
 * Reads one member's model.json and weight files, each checked against `digests` (pocovid.json's
 * `files`) and the weight files' sizes against what model.json's manifest needs.
 */
export function readMemberFiles(dir: string, member: string, digests?: FileDigests, hint = DAMAGED_HINT): LayersFiles {
  const memberDir = join(dir, member);
  const modelFile = join(memberDir, 'model.json');
  if (!existsSync(modelFile)) throw new BadInputError(modelFile, 'missing');
  const modelJson = parseJsonText<tf.io.ModelJSON>(new TextDecoder().decode(readMemberFile(dir, `${member}/model.json`, digests, hint)), modelFile, {
    what: 'a TF.js layers model',
    hint,
  });
  const weightFiles = new Map<string, Uint8Array>();
  let names: string[];
  try {
    names = weightFileNames(modelJson);
  } catch (err) {
    throw new BadInputError(modelFile, (err as Error).message);
  }
  for (const name of names) {
    const path = join(memberDir, name);
    if (!existsSync(path)) throw new BadInputError(path, 'weight file named in model.json is missing');
    weightFiles.set(name, readMemberFile(dir, `${member}/${name}`, digests, hint));
  }
  checkWeightBytes({ modelJson, weightFiles }, (name) => join(memberDir, name));
  return { modelJson, weightFiles };
}

/** Loads a model folder: meta + every member as a Layers model. */
export async function loadModelDir(dir: string): Promise<LoadedModel> {
  const meta = readModelMeta(dir);
  const members: tfl.LayersModel[] = [];
  for (const member of meta.members) {
    const files = readMemberFiles(dir, member, meta.files);
    try {
      members.push(await layersModelFromFiles(files));
    } catch (err) {
      throw new BadInputError(join(dir, member, 'model.json'), `cannot be loaded: ${(err as Error).message}`, { cause: err });
    }
    checkOutputs(members.at(-1)!, meta, join(dir, member));
  }
  return { path: dir, meta, members };
}

export function checkOutputs(model: tfl.LayersModel, meta: ModelDirMeta, where: string): void {
  const outShape = model.outputs[0]?.shape;
  const classes = outShape?.[outShape.length - 1];
  if (classes !== meta.classes.length) {
    throw new BadInputError(where, `model has ${classes} outputs but pocovid.json names ${meta.classes.length} classes`);
  }
}

