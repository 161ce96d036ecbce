// The conformal calibration each fold's model carries (pocovid.json "conformal"), by fold: what
// evaluate scores each fold's test rows with.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_META_FILE, readModelMeta, runFoldDirs } from '../infer/model_dir.js';
import type { ConformalCalibration } from './conformal.js';

/** The fold of a single-fold `pocovid train` run (config.json), 0 when it says none. */
function configFold(run: string): number {
  try {
    const fold = (JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as { fold?: unknown }).fold;
    return typeof fold === 'number' && Number.isInteger(fold) ? fold : 0;
  } catch {
    return 0;
  }
}

/** Fold → calibration, for the folds whose model folder holds one (none for older runs). */
export function foldCalibrations(run: string): Map<number, ConformalCalibration> {
  const folds = runFoldDirs(run);
  if (folds.length === 0 && existsSync(join(run, 'model', MODEL_META_FILE))) folds.push({ fold: configFold(run), dir: join(run, 'model') });
  const found = new Map<number, ConformalCalibration>();
  for (const { fold, dir } of folds) {
    const conformal = readModelMeta(dir).conformal;
    if (conformal) found.set(fold, conformal);
  }
  return found;
}
