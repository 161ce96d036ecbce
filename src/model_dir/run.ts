// A training run read as models: its fold folders (<run>/fold-<k>/model/, or <run>/model/ for a
// single-fold `pocovid train` run) gathered into one ensemble, or one fold of it.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { BadInputError } from '../errors.js';
import { runOutOfFoldConformal } from '../eval/conformal_io.js';
import { isGuardStats } from '../guard/guard.js';
import { readJsonFile } from '../util/json_file.js';
import { layersModelFromFiles, type LayersFiles } from './layers_io.js';
import { MODEL_DIR_FORMAT, MODEL_DIR_VERSION, MODEL_META_FILE, type ModelDirMeta } from './meta.js';
import { checkOutputs, loadModelDir, readMemberFiles, readModelMeta, type LoadedModel } from './model_dir.js';

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
  // A single-fold `pocovid train` run keeps its model in <run>/model.
  // A cv run: the model refitted on every frame (cv --refit), unless a fold is asked for.
  if (fold === undefined && existsSync(join(path, 'refit', 'model', MODEL_META_FILE))) return loadModelDir(join(path, 'refit', 'model'));
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
