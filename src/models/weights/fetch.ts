// Downloads a weight file once into a cache folder, verified by sha256. Offline machines get a message
// saying exactly where to put the file by hand.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { OfflineError, PocovidError } from '../../errors.js';
import type { WeightSource } from '../types.js';

export interface FetchOptions {
  /** Cache folder; default defaultCacheDir(). */
  cacheDir?: string;
  /** Called as bytes arrive; `total` is undefined when the server sends no Content-Length. */
  onProgress?: (received: number, total: number | undefined) => void;
  /** Injected fetch (tests, proxies); default the global fetch. */
  fetchImpl?: typeof fetch;
}

/** $POCOVID_CACHE, else $XDG_CACHE_HOME/pocovid, else ~/.cache/pocovid. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.POCOVID_CACHE) return env.POCOVID_CACHE;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'pocovid');
  return join(homedir(), '.cache', 'pocovid');
}

export function cachePathFor(source: WeightSource, cacheDir: string = defaultCacheDir()): string {
  return join(cacheDir, source.fileName);
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function byHandHint(source: WeightSource, path: string): string {
  const check = source.sha256 ? ` (sha256 ${source.sha256})` : '';
  return (
    `To install it by hand: on a machine with internet, download ${source.url}${check} ` +
    `and copy it to ${path} (or set POCOVID_CACHE to a folder holding ${source.fileName}).`
  );
}

/**
 * Returns the path of the cached file, downloading it first when it is absent or its sha256 is wrong.
 * The download streams to `<file>.partial` and is renamed into place only after the hash matches.
 * An empty `source.sha256` means "not known": the file is accepted unverified.
 */
export async function fetchWeights(source: WeightSource, options: FetchOptions = {}): Promise<string> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const path = cachePathFor(source, cacheDir);
  const expected = source.sha256.toLowerCase();
  let staleNote = '';
  if (existsSync(path)) {
    if (!expected) return path;
    const actual = await sha256File(path);
    if (actual === expected) return path;
    staleNote = ` The cached ${path} has sha256 ${actual}, not ${expected}, so it is downloaded again.`;
  }

  if (!source.url) {
    throw new PocovidError(
      `${source.fileName} has no download URL (it is distributed as a file); copy it to ${path} ` +
        `(or set POCOVID_CACHE to a folder holding it).${staleNote}`,
    );
  }
  await mkdir(cacheDir, { recursive: true });
  const partial = `${path}.partial`;
  const fetchImpl = options.fetchImpl ?? fetch;
  let response: Response;
  try {
    response = await fetchImpl(source.url);
  } catch (err) {
    throw new OfflineError(
      `cannot download ${source.fileName} from ${source.url}: ${describeNetworkError(err)}.${staleNote} ${byHandHint(source, path)}`,
      { cause: err },
    );
  }
  if (!response.ok || response.body === null) {
    throw new PocovidError(
      `cannot download ${source.fileName}: ${source.url} answered HTTP ${response.status} ${response.statusText}.${staleNote} ${byHandHint(source, path)}`,
    );
  }

  const totalHeader = Number(response.headers.get('content-length'));
  const total = Number.isFinite(totalHeader) && totalHeader > 0 ? totalHeader : undefined;
  const hash = createHash('sha256');
  let received = 0;
  const out = await open(partial, 'w');
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      await out.write(chunk);
      received += chunk.byteLength;
      options.onProgress?.(received, total);
    }
  } catch (err) {
    await out.close();
    await rm(partial, { force: true });
    throw new OfflineError(
      `download of ${source.url} broke off after ${received} bytes: ${describeNetworkError(err)}. ${byHandHint(source, path)}`,
      { cause: err },
    );
  }
  await out.sync();
  await out.close();

  const actual = hash.digest('hex');
  if (expected && actual !== expected) {
    await rm(partial, { force: true });
    throw new PocovidError(
      `sha256 mismatch for ${source.url}: expected ${expected}, got ${actual} (${received} bytes); the download was deleted`,
    );
  }
  await rename(partial, path);
  return path;
}

function describeNetworkError(err: unknown): string {
  // undici reports "fetch failed" and puts the useful part (ECONNREFUSED, ENOTFOUND...) in `cause`.
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message;
  const message = err instanceof Error ? err.message : String(err);
  return detail ? `${message} (${detail})` : message;
}
