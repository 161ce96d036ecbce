// `pocovid data subset`: some folds of a built dataset as a dataset of their own, optionally
// re-split into new folds by patient. It makes a simulated new site from held-out data (train a
// run on folds 0–3, then `pocovid update` it on half of fold 4's patients and test on the other
// half) without decoding anything again: frames are hard-linked (copied where links fail).
import { copyFileSync, existsSync, linkSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BadInputError } from '../errors.js';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic.js';
import { openDataset } from './dataset.js';
import { foldCounts, foldGroupOf, foldRows, type FoldGrouping } from './folds.js';
import { formatManifest } from './manifest.js';
import type { DatasetInfo, ManifestRow } from './types.js';

export interface SubsetOptions {
  data: string;
  /** Folds of `data` to keep. */
  folds: number[];
  out: string;
  /** Re-split the kept rows into this many folds (grouped like the source, stratified by class); default: keep the folds, renumbered 0.. in order. */
  refold?: number;
  seed?: number;
}

export function subsetDataset(options: SubsetOptions): { info: DatasetInfo; rows: ManifestRow[] } {
  const source = openDataset(options.data);
  const wanted = [...new Set(options.folds)].sort((a, b) => a - b);
  const absent = wanted.filter((f) => !Number.isInteger(f) || f < 0 || f >= source.info.folds);
  if (wanted.length === 0 || absent.length > 0) {
    throw new BadInputError(options.data, `has folds 0..${source.info.folds - 1}; cannot take ${absent.length > 0 ? absent.join(', ') : 'no fold'}`);
  }
  if (resolve(options.out) === resolve(options.data)) throw new BadInputError(options.out, 'is the source dataset itself; choose another folder');
  const groupBy: FoldGrouping = source.info.options.groupBy === 'video' ? 'video' : 'patient';
  const kept = source.rows.filter((r) => wanted.includes(r.fold));
  let folds: number;
  let rows: ManifestRow[];
  if (options.refold !== undefined) {
    folds = options.refold;
    const groups = new Set(kept.map((r) => foldGroupOf(r, groupBy))).size;
    if (!Number.isInteger(folds) || folds < 2 || folds > groups) throw new BadInputError(options.data, `cannot split ${groups} ${groupBy === 'video' ? 'videos' : 'patients'} into ${folds} folds`);
    // The rule data build and data refold use: grouped, stratified by class, seeded.
    rows = foldRows(kept, folds, options.seed ?? 0, groupBy);
  } else {
    folds = wanted.length;
    rows = kept.map((r) => ({ ...r, fold: wanted.indexOf(r.fold) }));
  }
  for (const r of rows) {
    const from = join(source.dir, r.path);
    const to = join(options.out, r.path);
    if (!existsSync(from)) throw new BadInputError(from, 'frame named in manifest.csv is missing');
    mkdirSync(dirname(to), { recursive: true });
    rmSync(to, { force: true });
    try {
      linkSync(from, to);
    } catch {
      copyFileSync(from, to);
    }
  }
  const info: DatasetInfo = {
    ...source.info,
    options: { ...source.info.options, subsetOf: resolve(options.data), subsetFolds: wanted, ...(options.refold !== undefined ? { refold: options.refold, refoldSeed: options.seed ?? 0 } : {}), folds },
    folds,
    ...foldCounts(rows, source.info.classes, folds, groupBy),
    skipped: [],
  };
  writeFileAtomicSync(join(options.out, 'manifest.csv'), formatManifest(rows));
  writeJsonAtomicSync(join(options.out, 'dataset.json'), info);
  return { info, rows };
}
