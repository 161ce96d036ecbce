// The saved-model folder: what `pocovid export` and the trainer write and what predict, serve and
// the page load.
//   <dir>/pocovid.json          ModelDirMeta (format "pocovid-model", version 1)
//   <dir>/member-<k>/model.json TF.js layers format, one per ensemble member
//   <dir>/member-<k>/weights.bin
// A training run holds one such folder per fold at <run>/fold-<k>/model/, so a run is read as the
// ensemble of its folds.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { isGuardStats, type GuardStats } from '../guard/guard.js';
import { conformalProblem, type ConformalCalibration } from '../eval/conformal.js';
import { runOutOfFoldConformal } from '../eval/conformal_io.js';
import { BadInputError } from '../errors.js';
import type { PretrainedCfg } from '../models/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { digestOf, fileDigestsSchema, readVerified, type FileDigests } from '../util/integrity.js';
import { parseJsonText, readJsonFile } from '../util/json_file.js';
import { checkWeightBytes, layersModelFromFiles, layersModelToFiles, weightFileNames, type LayersFiles } from './layers_io.js';

export const MODEL_DIR_FORMAT = 'pocovid-model';
export const MODEL_DIR_VERSION = 1;
export const MODEL_META_FILE = 'pocovid.json';

export type Aggregation = 'mean' | 'vote';

export interface ModelDirMeta {
  format: typeof MODEL_DIR_FORMAT;
  version: typeof MODEL_DIR_VERSION;
  name: string;
  classes: string[];
  cfg: PretrainedCfg;
  /** Sub-folder per ensemble member (one for a single model). */
  members: string[];
  /** How the members' probabilities are combined. */
  aggregation: Aggregation;
  createdAt: string;
  /** Where it came from (run folder, folds, config, metrics...). */
  source: Record<string, unknown>;
  /** Not-ultrasound guard fitted on the training frames (src/guard). */
  guard?: GuardStats;
  /**
   * sha256 and size of every member file ("member-0/weights.bin"...), checked whenever a member is
   * read or copied. Absent only in folders written before the check existed.
   */
  files?: FileDigests;
  /** Split-conformal calibration of the prediction sets (src/eval/conformal.ts). */
  conformal?: ConformalCalibration;
}

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

const weightSourceSchema = z.object({
  url: z.string(),
  sha256: z.string(),
  fileName: z.string(),
  licence: z.string(),
  format: z.enum(['keras-h5', 'keras-safetensors', 'torchvision-safetensors']),
  dropped: z.array(z.string()).optional(),
});

const cfgSchema = z.object({
  id: z.string(),
  inputSize: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  channels: z.union([z.literal(1), z.literal(3)]),
  channelOrder: z.enum(['rgb', 'bgr']),
  colour: z.enum(['rgb', 'grey']).optional(),
  sector: z.enum(['mask', 'crop', 'warp']).optional(),
  mean: z.array(z.number()),
  std: z.array(z.number()),
  camLayer: z.string(),
  classifier: z.string(),
  featureLayer: z.string(),
  sources: z.array(weightSourceSchema),
});

const metaSchema = z.object({
  format: z.literal(MODEL_DIR_FORMAT),
  version: z.literal(MODEL_DIR_VERSION),
  name: z.string().min(1),
  classes: z.array(z.string().min(1)).min(2),
  cfg: cfgSchema,
  members: z.array(z.string().regex(/^member-\d+$/)).min(1),
  aggregation: z.enum(['mean', 'vote']),
  createdAt: z.string(),
  source: z.record(z.string(), z.unknown()),
  guard: z.custom<GuardStats>(isGuardStats, { message: 'not a pocovid guard (kind "pocovid-guard", version 1)' }).optional(),
  files: fileDigestsSchema.optional(),
  conformal: z
    .unknown()
    .superRefine((value, ctx) => {
      const problem = value === undefined ? undefined : conformalProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
});

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
  members: LayersFiles[],
): Promise<ModelDirMeta> {
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
      await writeFileAtomic(join(memberDir, name), data);
      files[`${memberNames[k]}/${name}`] = digestOf(data);
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
  const parsed = metaSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new BadInputError(file, `not a valid pocovid model description: ${problems}`);
  }
  const meta = parsed.data as ModelDirMeta;
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
function readMemberFile(dir: string, rel: string, digests: FileDigests | undefined, hint: string): Uint8Array {
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
  if (!modelJson?.modelTopology || !Array.isArray(modelJson?.weightsManifest)) {
    throw new BadInputError(modelFile, 'not a TF.js layers model (no modelTopology / weightsManifest)');
  }
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

function checkOutputs(model: tfl.LayersModel, meta: ModelDirMeta, where: string): void {
  const outShape = model.outputs[0]?.shape;
  const classes = outShape?.[outShape.length - 1];
  if (classes !== meta.classes.length) {
    throw new BadInputError(where, `model has ${classes} outputs but pocovid.json names ${meta.classes.length} classes`);
  }
}

/** The fold model folders of a training run (<run>/fold-<k>/model), sorted by k. */
export function runFoldDirs(run: string): { fold: number; dir: string }[] {
  if (!existsSync(run) || !statSync(run).isDirectory()) return [];
  return readdirSync(run)
    .map((name) => /^fold-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ fold: Number(m[1]), dir: join(run, m[0], 'model') }))
    .filter((f) => existsSync(join(f.dir, MODEL_META_FILE)))
    .sort((a, b) => a.fold - b.fold);
}

export interface CollectedRun {
  info: Pick<ModelDirMeta, 'name' | 'classes' | 'cfg' | 'aggregation' | 'source' | 'guard' | 'conformal'>;
  members: LayersFiles[];
}

/**
 * Gathers the members of a run's folds (all folds → ensemble, or one fold) in file form.
 * Every fold must agree on classes and preprocessing, or the ensemble would mix inputs.
 */
export function collectRun(run: string, fold?: number, options: { folds?: boolean } = {}): CollectedRun {
  // A cv run's model is the one refitted on every frame (cv --refit), unless a fold or the folds are asked for.
  const refit = join(run, 'refit', 'model');
  if (fold === undefined && !options.folds && existsSync(join(refit, MODEL_META_FILE))) return collectRun(join(run, 'refit'));
  const folds = runFoldDirs(run);
  const crossValidation = folds.length > 0;
  // A single-fold `pocovid train` run keeps its model in <run>/model (its fold is in config.json).
  if (folds.length === 0 && existsSync(join(run, 'model', MODEL_META_FILE))) {
    folds.push({ fold: singleRunFold(run), dir: join(run, 'model') });
  }
  if (folds.length === 0) throw new BadInputError(run, 'not a training run (no model/pocovid.json or fold-<k>/model/pocovid.json)');
  const chosen = fold === undefined ? folds : folds.filter((f) => f.fold === fold);
  if (chosen.length === 0) {
    throw new BadInputError(run, `has no fold ${fold}; folds present: ${folds.map((f) => f.fold).join(', ')}`);
  }
  const first = readModelMeta(chosen[0]!.dir);
  const members: LayersFiles[] = [];
  for (const { fold: k, dir } of chosen) {
    const meta = readModelMeta(dir);
    if (JSON.stringify(meta.classes) !== JSON.stringify(first.classes) || JSON.stringify(meta.cfg) !== JSON.stringify(first.cfg)) {
      throw new BadInputError(dir, 'classes or preprocessing differ from the first fold; cannot ensemble');
    }
    // cv rewrites a fold's model from its checkpoint when the fold's result.json is gone.
    const hint = dir === join(run, 'model') ? 'train the run again' : `delete ${join(run, `fold-${k}`, 'result.json')} and run cv again: the fold's model is rewritten from its checkpoint`;
    for (const member of meta.members) members.push(readMemberFiles(dir, member, meta.files, hint));
  }
  const configFile = join(run, 'config.json');
  const config: unknown = existsSync(configFile) ? readJsonFile(configFile, { what: 'the run\'s configuration' }) : undefined;
  // The ensemble's guard is fitted on every frame of the dataset (cv writes it); one fold keeps its own.
  const runGuard = join(run, RUN_GUARD_FILE);
  let guard = first.guard;
  if (fold === undefined && existsSync(runGuard)) {
    const value = readJsonFile(runGuard, { what: 'the not-ultrasound guard', hint: 'run cv again to refit it' });
    if (!isGuardStats(value)) throw new BadInputError(runGuard, 'not a pocovid guard (kind "pocovid-guard", version 1)');
    guard = value;
  }
  // One fold carries its validation calibration; the ensemble of a cv's folds the out-of-fold one,
  // made from the pooled predictions.csv with the folds' method (src/eval/conformal_io.ts).
  const conformal = fold === undefined && crossValidation ? runOutOfFoldConformal(run, first.conformal ?? {}) : first.conformal;
  return {
    info: {
      name: first.name,
      classes: first.classes,
      cfg: first.cfg,
      aggregation: 'mean',
      source: { run, folds: chosen.map((f) => f.fold), config },
      ...(guard ? { guard } : {}),
      ...(conformal ? { conformal } : {}),
    },
    members,
  };
}

function singleRunFold(run: string): number {
  const file = join(run, 'config.json');
  if (!existsSync(file)) return 0;
  const config = readJsonFile<{ fold?: unknown } | null>(file, { what: 'the run\'s configuration' });
  return typeof config?.fold === 'number' ? config.fold : 0;
}

/** <run>/guard.json: the not-ultrasound guard fitted on all of a cross-validation's frames. */
export const RUN_GUARD_FILE = 'guard.json';

/** A model folder, or a run read as the ensemble of its folds (or one fold). */
export async function loadModel(path: string, fold?: number): Promise<LoadedModel> {
  if (existsSync(join(path, MODEL_META_FILE))) return loadModelDir(path);
  // A cv run: the model refitted on every frame (cv --refit), unless a fold is asked for.
  if (fold === undefined && existsSync(join(path, 'refit', 'model', MODEL_META_FILE))) return loadModelDir(join(path, 'refit', 'model'));
  // A single-fold `pocovid train` run keeps its model in <run>/model.
  if (fold === undefined && existsSync(join(path, 'model', MODEL_META_FILE))) return loadModelDir(join(path, 'model'));
  const collected = collectRun(path, fold);
  const members: tfl.LayersModel[] = [];
  for (const [k, files] of collected.members.entries()) {
    try {
      members.push(await layersModelFromFiles(files));
    } catch (err) {
      members.forEach((m) => m.dispose());
      throw new BadInputError(`${path} (member ${k})`, `cannot be loaded: ${(err as Error).message}`, { cause: err });
    }
  }
  const meta: ModelDirMeta = {
    format: MODEL_DIR_FORMAT,
    version: MODEL_DIR_VERSION,
    ...collected.info,
    members: members.map((_, k) => `member-${k}`),
    createdAt: new Date().toISOString(),
  };
  for (const m of members) checkOutputs(m, meta, path);
  return { path, meta, members };
}
