// The server's private temporary folder (uploads, and the model exported from a run), and the
// sweep at start-up of such folders left by servers that were killed (kill -9, a second SIGTERM, a
// crash): uploads are patient images and must not outlive the request that brought them.
// Each folder records its owner (process id and host) so that only a dead server's folder is removed,
// never that of a server still running, and never one whose owner was told to keep its uploads.
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeJsonAtomicSync } from '../util/atomic.js';
import { readJsonFile } from '../util/json_file.js';

export const WORK_DIR_PREFIX = 'pocovid-serve-';
export const OWNER_FILE = 'owner.json';
/** A folder of ours without an owner file (a kill between mkdtemp and the write) is swept after this long. */
const UNOWNED_GRACE_MS = 24 * 3600 * 1000;

interface Owner {
  pid: number;
  host: string;
  startedAt: string;
  keepUploads: boolean;
}

/** Makes <tmp>/pocovid-serve-XXXXXX with its owner file. */
export async function createWorkDir(keepUploads: boolean, tmp = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(tmp, WORK_DIR_PREFIX));
  writeJsonAtomicSync(join(dir, OWNER_FILE), { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), keepUploads } satisfies Owner);
  return dir;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(dir: string): Owner | undefined {
  try {
    const owner = readJsonFile<Partial<Owner> | null>(join(dir, OWNER_FILE));
    if (owner && typeof owner.pid === 'number' && typeof owner.host === 'string') return owner as Owner;
  } catch {
    // unreadable: treated as no owner file
  }
  return undefined;
}

/** Whether `dir` is a server folder of this user whose server is gone. */
function isStale(dir: string, now: number): boolean {
  const stat = statSync(dir);
  if (!stat.isDirectory()) return false;
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) return false;
  if (!existsSync(join(dir, OWNER_FILE))) return now - stat.mtimeMs > UNOWNED_GRACE_MS;
  const owner = readOwner(dir);
  if (!owner) return now - stat.mtimeMs > UNOWNED_GRACE_MS;
  if (owner.keepUploads || owner.host !== hostname() || owner.pid === process.pid) return false;
  return !isAlive(owner.pid);
}

/** Removes the folders of dead servers in `tmp`; returns those removed. */
export function sweepStaleWorkDirs(tmp = tmpdir()): string[] {
  let names: string[];
  try {
    names = readdirSync(tmp);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const now = Date.now();
  for (const name of names) {
    if (!name.startsWith(WORK_DIR_PREFIX)) continue;
    const dir = join(tmp, name);
    try {
      if (!isStale(dir, now)) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}
