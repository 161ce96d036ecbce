// The one comparison of a file's bytes with the digest recorded for it, and the schema of the
// records, shared by Node (src/util/integrity.ts, node:crypto) and the page (crypto.subtle, and
// pocovid.json checked by src/model_dir/meta.ts): no Node imports here.
import * as z from './zod_mini.js';

export interface FileDigest {
  /** Lower-case hex sha256 of the whole file. */
  sha256: string;
  bytes: number;
}

/** File (relative to the artifact's folder, '/'-separated) → its digest. */
export type FileDigests = Record<string, FileDigest>;

export const fileDigestSchema = z.object({
  sha256: z.string().check(z.regex(/^[0-9a-f]{64}$/, 'a sha256 of 64 lower-case hex digits')),
  bytes: z.int().check(z.minimum(0)),
});

export const fileDigestsSchema = z.record(z.string(), fileDigestSchema);

/** What is wrong with a file whose bytes have digest `actual`, or undefined when it matches `expected`. */
export function digestProblem(actual: FileDigest, expected: FileDigest, recordedIn: string): string | undefined {
  if (actual.bytes !== expected.bytes) {
    const how = actual.bytes < expected.bytes ? 'truncated' : 'longer than written';
    return `damaged (${how}): ${actual.bytes} bytes, but ${recordedIn} records ${expected.bytes}`;
  }
  if (actual.sha256 !== expected.sha256) {
    return `damaged: its sha256 is ${actual.sha256.slice(0, 12)}… but ${recordedIn} records ${expected.sha256.slice(0, 12)}… (the file changed after it was written)`;
  }
  return undefined;
}
