// Reading a built dataset for training and evaluation: the manifest, fold splits with a
// validation set carved from the training folds (never the test fold), and batches as tensors.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { BadInputError, PocovidError } from '../errors.js';
import { createRng, type Rng } from '../util/rng.js';
import type { Augmenter } from './augment.js';
import { assignGroups } from './folds.js';
import { readImageAsInput } from './image.js';
import { readManifest } from './manifest.js';
import { readJsonFile } from '../util/json_file.js';
import type { ClassName, DatasetInfo, InputPreprocessor, ManifestRow } from './types.js';

export interface Dataset {
  dir: string;
  rows: ManifestRow[];
  info: DatasetInfo;
}

/** Reads <dir>/manifest.csv and <dir>/dataset.json, and checks that they describe the same frames. */
export function openDataset(dir: string): Dataset {
  const infoPath = join(dir, 'dataset.json');
  const info = readJsonFile<DatasetInfo>(infoPath, { what: 'the dataset description; is this a dataset written by `pocovid data build`?' });
  if (info === null || typeof info !== 'object' || !Array.isArray(info.classes) || typeof info.folds !== 'number') throw new BadInputError(infoPath, 'no "classes" or "folds"');
  const manifest = join(dir, 'manifest.csv');
  const rows = readManifest(manifest);
  for (const r of rows) {
    if (r.fold >= info.folds) throw new BadInputError(manifest, `${r.path}: fold ${r.fold} but the dataset has ${info.folds} folds`);
  }
  checkCounts(rows, info, manifest, infoPath);
  return { dir, rows, info };
}

/**
 * data build writes the frame counts per class and fold into dataset.json with the manifest; a
 * manifest cut at a line end parses cleanly, and only these counts show that rows are gone.
 */
function checkCounts(rows: readonly ManifestRow[], info: DatasetInfo, manifest: string, infoPath: string): void {
  const perFold = info.counts?.perFold;
  if (!perFold || typeof perFold !== 'object') return;
  const counted = new Map<string, number>();
  for (const r of rows) counted.set(`${r.fold}/${r.label}`, (counted.get(`${r.fold}/${r.label}`) ?? 0) + 1);
  const differences: string[] = [];
  const keys = new Set([...counted.keys(), ...Object.entries(perFold).flatMap(([fold, perClass]) => Object.keys(perClass ?? {}).map((label) => `${fold}/${label}`))]);
  for (const key of [...keys].sort()) {
    const [fold, label] = key.split('/') as [string, string];
    const want = perFold[fold]?.[label] ?? 0;
    const have = counted.get(key) ?? 0;
    if (want !== have) differences.push(`fold ${fold} ${label}: ${have} rows, ${want} counted`);
  }
  if (differences.length > 0) {
    const total = Object.values(perFold).reduce((n, perClass) => n + Object.values(perClass ?? {}).reduce((a, b) => a + b, 0), 0);
    throw new BadInputError(
      manifest,
      `has ${rows.length} frames but ${infoPath} counts ${total} (${differences.slice(0, 4).join('; ')}${differences.length > 4 ? '; …' : ''}): one of them is truncated or was edited; run data build again to rewrite both`,
    );
  }
}

export interface SplitOptions {
  /** Share of the training folds' frames held out for validation (default 0.2; 0 = none). */
  validationFraction?: number;
  seed?: number;
  /** What validation keeps together (default patient, the honest choice). */
  groupBy?: 'patient' | 'video';
}

export interface FoldSplit {
  train: ManifestRow[];
  validation: ManifestRow[];
  test: ManifestRow[];
}

/**
 * Test = the rows of `testFold`; the other folds are split into train and validation with the
 * same grouped, class-stratified assignment as the folds, so no patient is in both.
 */
export function splitForFold(rows: readonly ManifestRow[], testFold: number, options: SplitOptions = {}): FoldSplit {
  const folds = new Set(rows.map((r) => r.fold));
  if (!folds.has(testFold)) {
    throw new PocovidError(`test fold ${testFold} has no rows; folds present: ${[...folds].sort((a, b) => a - b).join(', ')}`);
  }
  const fraction = options.validationFraction ?? 0.2;
  if (!(fraction >= 0 && fraction < 1)) throw new PocovidError(`validation fraction must be in [0, 1), got ${fraction}`);
  const test = rows.filter((r) => r.fold === testFold);
  const rest = rows.filter((r) => r.fold !== testFold);
  if (fraction === 0) return { train: rest, validation: [], test };
  const groupOf = (r: ManifestRow) => (options.groupBy === 'video' ? r.source : r.patient);
  const bins = assignGroups(rest.map((r) => ({ group: groupOf(r), label: r.label })), [1 - fraction, fraction], createRng(options.seed ?? 0));
  return {
    train: rest.filter((r) => bins.get(groupOf(r)) === 0),
    validation: rest.filter((r) => bins.get(groupOf(r)) === 1),
    test,
  };
}

/**
 * Decoded, preprocessed inputs by file, least recently used dropped first. A dataset is ~3k
 * frames; at 224×224×3 float32 (~0.6 MB each) the default 2 GiB holds all of it.
 */
export class InputCache {
  private readonly entries = new Map<string, Float32Array>();
  private bytes = 0;
  constructor(readonly maxBytes = 2 * 1024 ** 3) {}

  get(key: string): Float32Array | undefined {
    const value = this.entries.get(key);
    if (value) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: Float32Array): void {
    if (value.byteLength > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.byteLength;
      this.entries.delete(key);
    }
    this.entries.set(key, value);
    this.bytes += value.byteLength;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.byteLength;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get byteLength(): number {
    return this.bytes;
  }
}

export interface BatchOptions {
  /** Class order of the one-hot labels (default covid, pneumonia, regular). */
  classes?: readonly ClassName[];
  augment?: Augmenter;
  /** Required with augment. */
  rng?: Rng;
  cache?: InputCache;
}

export interface Batch {
  /** [n, height, width, channels] preprocessed by `preprocess`. */
  x: tf.Tensor4D;
  /** [n, classes] one-hot. */
  y: tf.Tensor2D;
  labels: ClassName[];
}

/** Decodes the rows' PNGs (sharp), preprocesses them, optionally augments; two tensors, nothing else left allocated. */
export async function loadBatch(dir: string, rows: readonly ManifestRow[], preprocess: InputPreprocessor, options: BatchOptions = {}): Promise<Batch> {
  const classes = options.classes ?? ['covid', 'pneumonia', 'regular'];
  if (options.augment && !options.rng) throw new PocovidError('loadBatch: augmentation needs an rng (seeded)');
  const [h, w] = preprocess.inputSize;
  const c = preprocess.channels;
  const per = h * w * c;
  const x = new Float32Array(rows.length * per);
  const y = new Float32Array(rows.length * classes.length);
  const cacheKey = (path: string) => `${preprocess.key}|${path}`;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const k = classes.indexOf(row.label);
    if (k < 0) throw new PocovidError(`${row.path}: label ${row.label} is not one of the classes ${classes.join(', ')}`);
    y[i * classes.length + k] = 1;
    const path = join(dir, row.path);
    let input = options.cache?.get(cacheKey(path));
    if (!input) {
      input = await readImageAsInput(path, preprocess);
      options.cache?.set(cacheKey(path), input);
    }
    x.set(options.augment ? options.augment.apply(input, [h, w, c], options.rng!) : input, i * per);
  }
  return { x: tf.tensor4d(x, [rows.length, h, w, c]), y: tf.tensor2d(y, [rows.length, classes.length]), labels: rows.map((r) => r.label) };
}

/** Rows cut into batches, shuffled by rng when given (a fresh order per call). */
export function batches<T>(rows: readonly T[], batchSize: number, rng?: Rng): T[][] {
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new PocovidError(`batch size must be a positive integer, got ${batchSize}`);
  const order = rng ? rng.shuffle([...rows]) : [...rows];
  const out: T[][] = [];
  for (let i = 0; i < order.length; i += batchSize) out.push(order.slice(i, i + batchSize));
  return out;
}
