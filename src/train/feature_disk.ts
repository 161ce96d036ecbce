// The frozen-feature cache on disk: the memory store of feature_cache.ts backed by one file per
// (image, view), so that folds trained by other processes — queue workers on other machines that
// see the same shared folder, or a sweep run again after a kill — reuse what one of them computed.
//
// Layout: <dir>/<fingerprint>/<h[0..2]>/<h>.f32, h = sha256 of the entry's key (`path#view`); the
// fingerprint (backbone weights, preprocessing, augmentation, seed; see head_sources.ts) keeps
// features of different backbones apart. A file is 8 bytes of magic, the sha256 of the payload, and
// the payload (float32, little-endian, the outputs one after another). Files are written to a
// temporary name and renamed, so two workers filling the same entry at once leave one complete
// file (both computed the same values) and a reader never sees half of one. A file that is cut,
// of the wrong size or fails its digest is reported and computed again.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomicSync } from '../util/atomic.js';
import { createFeatureStore, type FeatureBacking, type SharedFeatureStore } from './feature_cache.js';

const MAGIC = Buffer.from('PCVFEAT1', 'latin1');
const HEADER = MAGIC.length + 32;

export interface DiskFeatureOptions {
  /** Told about a file that could not be used (it is computed again and replaced); default: a line on stderr. */
  onDamaged?: (file: string, problem: string) => void;
}

/** Where an entry of `fingerprint` lives under `dir`. */
export function featureFile(dir: string, fingerprint: string, key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  return join(dir, fingerprint, h.slice(0, 2), `${h}.f32`);
}

function encodeEntry(values: readonly Float32Array[]): Buffer {
  const payload = Buffer.concat(values.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
  const digest = createHash('sha256').update(payload).digest();
  return Buffer.concat([MAGIC, digest, payload]);
}

/** The entry's outputs, or a reason why the file cannot be used. */
function decodeEntry(bytes: Buffer, sizes: readonly number[]): Float32Array[] | string {
  const expected = HEADER + 4 * sizes.reduce((a, b) => a + b, 0);
  if (bytes.length !== expected) return `${bytes.length} bytes where ${expected} were expected (cut short, or another backbone's)`;
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) return 'not a feature file (wrong magic)';
  const payload = bytes.subarray(HEADER);
  if (!createHash('sha256').update(payload).digest().equals(bytes.subarray(MAGIC.length, HEADER))) return 'damaged: its sha256 does not match the one it records';
  // A copy into aligned memory: the file's buffer need not sit at a multiple of 4.
  const all = new Float32Array(payload.length / 4);
  new Uint8Array(all.buffer).set(payload);
  const out: Float32Array[] = [];
  let offset = 0;
  for (const size of sizes) {
    out.push(all.subarray(offset, offset + size));
    offset += size;
  }
  return out;
}

const warnDamaged = (file: string, problem: string): void => {
  process.stderr.write(`pocovid: ${file}: ${problem}; its features are computed again\n`);
};

export function diskFeatureBacking(dir: string, options: DiskFeatureOptions = {}): FeatureBacking {
  const root = resolve(dir);
  const onDamaged = options.onDamaged ?? warnDamaged;
  let fingerprint: string | undefined;
  const fileOf = (key: string): string => {
    if (!fingerprint) throw new Error('the feature store was used before it was claimed for a backbone');
    return featureFile(root, fingerprint, key);
  };
  return {
    claim(value) {
      fingerprint = value;
    },
    read(key, sizes) {
      const file = fileOf(key);
      if (!existsSync(file)) return undefined;
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (err) {
        onDamaged(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        return undefined;
      }
      const decoded = decodeEntry(bytes, sizes);
      if (typeof decoded === 'string') {
        onDamaged(file, decoded);
        return undefined;
      }
      return decoded;
    },
    write(key, values) {
      writeFileAtomicSync(fileOf(key), encodeEntry(values));
    },
  };
}

/** A feature store whose entries are also kept in `dir` (see the file comment). */
export function createDiskFeatureStore(dir: string, options: DiskFeatureOptions = {}): SharedFeatureStore {
  return createFeatureStore(diskFeatureBacking(dir, options));
}
