// The sha256 and size of the files an artifact is made of (a model folder's members, a training
// checkpoint, a cached ONNX file), recorded when they are written and checked whenever they are
// read or copied: a truncated or overwritten file must stop the program with an error naming it,
// not load as a model that diagnoses from garbage.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { BadInputError } from '../errors.js';
import { digestProblem, type FileDigest } from './digest_rule.js';

export { fileDigestSchema, fileDigestsSchema } from './digest_rule.js';
export type { FileDigest, FileDigests } from './digest_rule.js';

export function digestOf(data: Uint8Array): FileDigest {
  return { sha256: createHash('sha256').update(data).digest('hex'), bytes: data.byteLength };
}

/**
 * Throws a BadInputError naming `file` when `data` (its contents) differs from `expected`, the
 * digest recorded in `recordedIn`. The size is compared first: a truncated file says so.
 */
export function checkDigest(file: string, data: Uint8Array, expected: FileDigest, recordedIn: string, hint?: string): void {
  const problem = digestProblem(digestOf(data), expected, recordedIn);
  if (problem) throw new BadInputError(file, hint ? `${problem}; ${hint}` : problem);
}

/** Reads a file and checks it against its recorded digest (the size before reading the bytes). */
export function readVerified(file: string, expected: FileDigest, recordedIn: string, hint?: string): Uint8Array {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BadInputError(file, `${code === 'ENOENT' ? 'missing' : `cannot be read (${code})`}, but ${recordedIn} records it${hint ? `; ${hint}` : ''}`, { cause: err });
  }
  // A size that differs is enough to know, without reading (or hashing) a large file.
  if (size !== expected.bytes) {
    const problem = digestProblem({ sha256: '', bytes: size }, expected, recordedIn)!;
    throw new BadInputError(file, hint ? `${problem}; ${hint}` : problem);
  }
  const data = new Uint8Array(readFileSync(file));
  checkDigest(file, data, expected, recordedIn, hint);
  return data;
}
