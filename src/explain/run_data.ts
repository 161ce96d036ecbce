// What explanations read from a training run: one fold's model, the dataset named in config.json,
// and that fold's test frames grouped into items (a video's frames together, an image alone);
// or the user's own image and video files.
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { readManifest } from '../data/manifest.js';
import type { ManifestRow } from '../data/types.js';
import { BadInputError } from '../errors.js';
import { decodeImageTo, decodeVideoTo, type Frame } from '../media/decode.js';
import { sniffFile } from '../media/sniff.js';
import { loadModel, runFoldDirs } from '../model_dir/run.js';
import { loadModelDir } from '../model_dir/model_dir.js';
import { MODEL_META_FILE } from '../model_dir/meta.js';
import type { PretrainedCfg } from '../models/types.js';
import { readJsonFile } from '../util/json_file.js';
import type { GuardStats } from '../guard/guard.js';

export interface RunModel {
  model: tfl.LayersModel;
  cfg: PretrainedCfg;
  classes: string[];
  /** The not-ultrasound guard stored with this model, if any. */
  guard?: GuardStats;
  /** The fold whose model this is (undefined for a plain model folder). */
  fold: number | undefined;
}

/** `fold` of <run>/config.json (a single-fold `pocovid train` output), if any. */
function configFold(run: string): number | undefined {
  const file = join(run, 'config.json');
  if (!existsSync(file)) return undefined;
  const fold = readJsonFile<{ fold?: unknown } | null>(file, { what: 'the run\'s configuration' })?.fold;
  return typeof fold === 'number' && Number.isInteger(fold) ? fold : undefined;
}

/**
 * One fold's model: a cross-validation run's <run>/fold-<k>/model (default: the lowest fold), a
 * single-fold training output's <run>/model (its fold from config.json), or a model folder.
 * Explanations need one network: maps of an ensemble's members would explain different functions.
 */
export async function loadRunModel(run: string, fold?: number): Promise<RunModel> {
  for (const [dir, dirFold] of [[run, undefined], [join(run, 'model'), configFold(run)]] as const) {
    if (!existsSync(join(dir, MODEL_META_FILE))) continue;
    if (fold !== undefined && dirFold !== undefined && fold !== dirFold) {
      throw new BadInputError(run, `holds the model of fold ${dirFold} only, not fold ${fold}`);
    }
    const loaded = await loadModelDir(dir);
    return { model: loaded.members[0]!, cfg: loaded.meta.cfg, classes: loaded.meta.classes, fold: dirFold ?? fold, ...(loaded.meta.guard ? { guard: loaded.meta.guard } : {}) };
  }
  const chosen = fold ?? runFoldDirs(run)[0]?.fold;
  const loaded = await loadModel(run, chosen ?? 0);
  return { model: loaded.members[0]!, cfg: loaded.meta.cfg, classes: loaded.meta.classes, fold: chosen ?? 0, ...(loaded.meta.guard ? { guard: loaded.meta.guard } : {}) };
}

/** The dataset folder named by the run's config.json (`data`), checked to hold a manifest. */
export function runDataset(run: string, fold: number | undefined): string {
  const candidates = [join(run, 'config.json'), ...(fold === undefined ? [] : [join(run, `fold-${fold}`, 'config.json')])];
  const file = candidates.find((f) => existsSync(f));
  if (!file) throw new BadInputError(run, 'has no config.json naming its dataset; pass image or video files to explain instead');
  const data = readJsonFile<{ data?: unknown } | null>(file, { what: 'the run\'s configuration' })?.data;
  if (typeof data !== 'string' || data === '') throw new BadInputError(file, 'has no "data" entry naming the dataset folder');
  // As given to `pocovid train` (relative to where it ran), else relative to the run folder.
  const options = isAbsolute(data) ? [data] : [resolve(data), resolve(run, data)];
  const found = options.find((d) => existsSync(join(d, 'manifest.csv')));
  if (!found) throw new BadInputError(file, `dataset "${data}" has no manifest.csv (looked in ${options.join(', ')})`);
  return found;
}

export interface ExplainItem {
  id: string;
  /** File name, or the source video/image of dataset frames. */
  name: string;
  kind: 'image' | 'video';
  /** Known for dataset frames. */
  label?: string;
  /** RGB at the model's input size. */
  frames: Frame[];
  /** Dataset-relative path of each frame (dataset items). */
  paths?: string[];
  /** The guard's verdict on a file (explain sets it): flagged = no diagnosis; overridden = --no-guard. */
  guard?: ItemGuard;
}

export interface ItemGuard {
  flagged: boolean;
  reason: string;
  overridden?: boolean;
}

const itemId = (k: number): string => `item-${String(k).padStart(4, '0')}`;

/** A fold's test frames grouped by source; `limit` keeps the first N sources (0 = all). */
export async function testItems(dataset: string, fold: number, cfg: PretrainedCfg, limit = 0): Promise<ExplainItem[]> {
  const rows = readManifest(join(dataset, 'manifest.csv')).filter((r) => r.fold === fold);
  if (rows.length === 0) throw new BadInputError(join(dataset, 'manifest.csv'), `has no frames in fold ${fold}`);
  const bySource = new Map<string, ManifestRow[]>();
  for (const row of rows) bySource.set(row.source, [...(bySource.get(row.source) ?? []), row]);
  const groups = [...bySource.values()].slice(0, limit > 0 ? limit : undefined);
  const [h, w] = cfg.inputSize;
  const items: ExplainItem[] = [];
  for (const [k, group] of groups.entries()) {
    group.sort((a, b) => a.frame - b.frame);
    const frames: Frame[] = [];
    for (const row of group) {
      const frame = await decodeImageTo(join(dataset, row.path), w, h);
      frames.push({ ...frame, index: row.frame, time: row.time });
    }
    items.push({ id: itemId(k), name: group[0]!.source, kind: group[0]!.kind, label: group[0]!.label, frames, paths: group.map((r) => r.path) });
  }
  return items;
}

/**
 * The user's files: images as one frame, videos sampled (default 3 fps, at most 30 frames); each
 * frame also at `guardSide`² (from the same decoded pixels) when the guard needs its own.
 */
export async function fileItems(files: string[], cfg: PretrainedCfg, sampling: { fps?: number; maxFrames?: number } = {}, guardSide?: number): Promise<ExplainItem[]> {
  const [h, w] = cfg.inputSize;
  const items: ExplainItem[] = [];
  const options = guardSide ? { alsoSizes: [[guardSide, guardSide]] as [number, number][] } : {};
  for (const [k, file] of files.entries()) {
    const type = await sniffFile(file);
    const frames = type.kind === 'video' ? await decodeVideoTo(file, w, h, sampling, { type, ...options }) : [await decodeImageTo(file, w, h, { type, ...options })];
    if (frames.length === 0) throw new BadInputError(file, 'no frames could be decoded');
    items.push({ id: itemId(k), name: file, kind: type.kind, frames });
  }
  return items;
}
