// `pocovid data subset`: some folds of a built dataset as a dataset of their own, optionally
// re-split into new folds by patient. It makes a simulated new site from held-out data (train a
// run on folds 0–3, then `pocovid update` it on half of fold 4's patients and test on the other
// half) without decoding anything again: frames are hard-linked (copied where links fail).
import { copyFileSync, existsSync, linkSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BadInputError } from '../errors.js';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic.js';
import { openDataset } from './dataset.js';
import { assignFolds } from './folds.js';
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

function counts(rows: readonly ManifestRow[], classes: readonly string[], folds: number, groupOf: (r: ManifestRow) => string): Pick<DatasetInfo, 'counts' | 'sourceCounts'> {
  const zero = (): Record<string, number> => Object.fromEntries(classes.map((c) => [c, 0]));
  const perClass = zero();
  const sourcesPerClass = zero();
  const perFold: Record<string, Record<string, number>> = {};
  const sourcesPerFold: Record<string, Record<string, number>> = {};
  const groupsPerFold: Record<string, number> = {};
  for (let f = 0; f < folds; f++) {
    perFold[f] = zero();
    sourcesPerFold[f] = zero();
    groupsPerFold[f] = 0;
  }
  const sources = new Set<string>();
  const groups = new Set<string>();
  for (const r of rows) {
    perClass[r.label]!++;
    perFold[r.fold]![r.label]!++;
    if (!sources.has(r.source)) {
      sources.add(r.source);
      sourcesPerClass[r.label]!++;
      sourcesPerFold[r.fold]![r.label]!++;
    }
    if (!groups.has(groupOf(r))) {
      groups.add(groupOf(r));
      groupsPerFold[r.fold]!++;
    }
  }
  return { counts: { perClass, perFold }, sourceCounts: { perClass: sourcesPerClass, perFold: sourcesPerFold, groupsPerFold } };
}

export function subsetDataset(options: SubsetOptions): { info: DatasetInfo; rows: ManifestRow[] } {
  const source = openDataset(options.data);
  const wanted = [...new Set(options.folds)].sort((a, b) => a - b);
  const absent = wanted.filter((f) => !Number.isInteger(f) || f < 0 || f >= source.info.folds);
  if (wanted.length === 0 || absent.length > 0) {
    throw new BadInputError(options.data, `has folds 0..${source.info.folds - 1}; cannot take ${absent.length > 0 ? absent.join(', ') : 'no fold'}`);
  }
  if (resolve(options.out) === resolve(options.data)) throw new BadInputError(options.out, 'is the source dataset itself; choose another folder');
  const groupBy = source.info.options.groupBy === 'video' ? 'video' : 'patient';
  const groupOf = (r: ManifestRow): string => (groupBy === 'video' ? r.source : r.patient);
  const kept = source.rows.filter((r) => wanted.includes(r.fold));
  let folds: number;
  let rows: ManifestRow[];
  if (options.refold !== undefined) {
    folds = options.refold;
    const groups = new Set(kept.map(groupOf)).size;
    if (!Number.isInteger(folds) || folds < 2 || folds > groups) throw new BadInputError(options.data, `cannot split ${groups} ${groupBy === 'video' ? 'videos' : 'patients'} into ${folds} folds`);
    const assignment = assignFolds(kept.map((r) => ({ group: groupOf(r), label: r.label })), folds, options.seed ?? 0);
    rows = kept.map((r) => ({ ...r, fold: assignment.get(groupOf(r))! }));
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
    ...counts(rows, source.info.classes, folds, groupOf),
    skipped: [],
  };
  writeFileAtomicSync(join(options.out, 'manifest.csv'), formatManifest(rows));
  writeJsonAtomicSync(join(options.out, 'dataset.json'), info);
  return { info, rows };
}
