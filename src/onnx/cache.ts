// ONNX files cached by a fingerprint of the model (topology + every weight + opset + exporter
// version), so that predict/evaluate/serve on the same weights export once, not on every start.
// Each file's sha256 is kept beside it; a damaged file is exported again, never run.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, stat, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { defaultCacheDir } from '../models/weights/fetch.js';
import { writeJsonAtomicSync } from '../util/atomic.js';
import { digestOf, fileDigestSchema, readVerified } from '../util/integrity.js';
import { readJsonFile } from '../util/json_file.js';
import { DEFAULT_OPSET, exportOnnx } from './export.js';

/** Bump when the exporter's output changes for the same model, so old cache entries are not used. */
export const EXPORTER_VERSION = 1;

/** How many cached files to keep (a cross-validation run makes one per fold; VGG-16 is ~60 MB). */
const KEEP_FILES = 12;

/** $POCOVID_CACHE/onnx (see defaultCacheDir). */
export function defaultOnnxCacheDir(): string {
  return join(defaultCacheDir(), 'onnx');
}

/** Hex sha256 identifying what the exporter would produce for `model` at `opset`. */
export function modelFingerprint(model: tfl.LayersModel, opset: number = DEFAULT_OPSET): string {
  const hash = createHash('sha256');
  hash.update(`pocovid-onnx-exporter/${EXPORTER_VERSION}/opset-${opset}\n`);
  hash.update(model.toJSON(undefined, true) as string);
  for (const variable of model.weights) {
    const tensor = variable.read();
    hash.update(`\n${variable.originalName}:${tensor.shape.join('x')}:${tensor.dtype}\n`);
    const data = tensor.dataSync();
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex');
}

export interface CachedExportOptions {
  cacheDir?: string;
  opset?: number;
}

/** The path of `model`'s ONNX file in the cache, exporting it first when it is not there. */
export async function cachedOnnxFile(model: tfl.LayersModel, options: CachedExportOptions = {}): Promise<string> {
  const opset = options.opset ?? DEFAULT_OPSET;
  const dir = options.cacheDir ?? defaultOnnxCacheDir();
  const file = join(dir, `${model.name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${modelFingerprint(model, opset).slice(0, 32)}.onnx`);
  if (existsSync(file) && isIntact(file)) {
    const now = new Date();
    await utimes(file, now, now); // most recently used: pruned last
    return file;
  }
  // Missing, or damaged since it was written (a cut write, a full disk): export it again.
  const { bytes } = await exportOnnx(model, file, { opset });
  // The digest is written after the file it describes: a kill in between leaves no digest, and
  // the file is exported again next time.
  writeJsonAtomicSync(digestFileOf(file), digestOf(bytes));
  await prune(dir, KEEP_FILES);
  return file;
}

/** <file>.sha256.json: the sha256 and size of a cached ONNX file. */
function digestFileOf(file: string): string {
  return `${file}.sha256.json`;
}

/** Whether a cached file matches the digest recorded when it was written. */
function isIntact(file: string): boolean {
  try {
    readVerified(file, readJsonFile(digestFileOf(file), { schema: fileDigestSchema }), digestFileOf(file));
    return true;
  } catch {
    return false;
  }
}

/** Removes all but the `keep` most recently used .onnx files of the cache folder. */
async function prune(dir: string, keep: number): Promise<void> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('.onnx'));
  if (names.length <= keep) return;
  const dated = await Promise.all(names.map(async (name) => ({ name, mtime: (await stat(join(dir, name))).mtimeMs })));
  dated.sort((a, b) => b.mtime - a.mtime);
  await Promise.all(dated.slice(keep).flatMap(({ name }) => [rm(join(dir, name), { force: true }), rm(digestFileOf(join(dir, name)), { force: true })]));
}
