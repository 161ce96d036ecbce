// `pocovid data refold`: the same frames in other folds. Cross-validation over a few patients
// swings with the fold assignment (one COVID patient holds 150 of 348 COVID frames here), so a
// recipe is judged over several fold seeds. A refolded dataset is a manifest and dataset.json of
// its own whose `frames` is a link to the original's frames: nothing is decoded or copied, and the
// frozen-feature cache (keyed by the frames' real location) serves every fold seed.
import { existsSync, lstatSync, mkdirSync, readlinkSync, realpathSync, symlinkSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { BadInputError, PocovidError } from '../errors.js';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic.js';
import { openDataset, type Dataset } from './dataset.js';
import { foldCounts, foldRows, type FoldGrouping } from './folds.js';
import { formatManifest } from './manifest.js';
import type { DatasetInfo } from './types.js';

/** The fold seed a dataset was built (or refolded) with. */
export function datasetFoldSeed(info: DatasetInfo): number {
  const seed = info.options?.seed;
  return typeof seed === 'number' ? seed : 0;
}

/**
 * Writes `out` as `dir`'s frames assigned to folds with `seed` (same grouping and fold count) and
 * returns it opened. Running it again with the same arguments rewrites the same files.
 */
export function refoldDataset(dir: string, out: string, seed: number): Dataset {
  const source = openDataset(dir);
  const groupBy = (source.info.options?.groupBy ?? 'patient') as FoldGrouping;
  if (groupBy !== 'patient' && groupBy !== 'video') throw new BadInputError(join(dir, 'dataset.json'), `unknown grouping "${String(groupBy)}"`);
  if (resolve(out) === resolve(dir)) throw new PocovidError(`data refold: --out must be another folder than ${dir}`);
  let rows;
  try {
    rows = foldRows(source.rows, source.info.folds, seed, groupBy);
  } catch (err) {
    throw new PocovidError(`${dir}: ${(err as Error).message}`);
  }
  mkdirSync(out, { recursive: true });
  const framesLink = join(out, 'frames');
  const target = relative(out, realpathSync(join(dir, 'frames')));
  if (existsSync(framesLink) || isLink(framesLink)) {
    if (!isLink(framesLink) || readlinkSync(framesLink) !== target) throw new PocovidError(`${framesLink} exists and is not a link to ${dir}'s frames: choose an empty --out`);
  } else {
    symlinkSync(target, framesLink, 'dir');
  }
  const info: DatasetInfo = {
    ...source.info,
    options: { ...source.info.options, seed, refoldedFrom: resolve(dir), refoldedFromSeed: datasetFoldSeed(source.info) },
    ...foldCounts(rows, source.info.classes, source.info.folds, groupBy),
  };
  writeFileAtomicSync(join(out, 'manifest.csv'), formatManifest(rows));
  writeJsonAtomicSync(join(out, 'dataset.json'), info);
  return openDataset(out);
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
