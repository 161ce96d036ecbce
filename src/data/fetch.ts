// `pocovid data fetch`: download the public POCUS repository archive (a zip) and extract only
// its data/ folder. The download goes to a .part file renamed when complete; every extracted
// file is written under a temporary name and renamed. Without network: a clear OfflineError.
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { BadInputError, OfflineError, PocovidError } from '../errors.js';
import { writeFileAtomicSync } from '../util/atomic.js';
import { createProgress } from './progress.js';
import { ZipReader } from './zip.js';

export const DEFAULT_POCUS_URL = 'https://github.com/jannisborn/covid19_pocus_ultrasound/archive/refs/heads/master.zip';

export interface FetchOptions {
  out: string;
  url?: string;
  /** A local archive instead of downloading. */
  archive?: string;
  /** Keep the downloaded archive next to the data (default: removed after extraction). */
  keepArchive?: boolean;
  /** Abort when no byte arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
  quiet?: boolean;
}

export interface FetchResult {
  out: string;
  files: number;
  bytes: number;
  archive: string;
}

const NETWORK_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'ABORT_ERR']);

function offlineHelp(url: string, why: string): OfflineError {
  return new OfflineError(
    `cannot download ${url} (${why}). Without network, use a local copy: download the archive elsewhere and run ` +
      '`pocovid data fetch --archive <file.zip> --out <dir>`, or point `pocovid data build --source <dir>` at the data/ folder ' +
      'of a local copy of the POCUS repository (github.com/jannisborn/covid19_pocus_ultrasound).',
  );
}

function errorCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    // Happy-eyeballs connects fail with an AggregateError of the per-address errors.
    const inner = (e as { errors?: unknown[] }).errors?.[0];
    if (inner && typeof (inner as { code?: unknown }).code === 'string') return (inner as { code: string }).code;
    if ((e as Error).name === 'AbortError' || (e as Error).name === 'TimeoutError') return 'ABORT_ERR';
    e = (e as { cause?: unknown }).cause;
  }
  return (err as Error)?.message ?? String(err);
}

/** Downloads url to file (via file.part), with a progress bar; returns the byte count. */
export async function download(url: string, file: string, options: { idleTimeoutMs?: number; quiet?: boolean } = {}): Promise<number> {
  const part = `${file}.part`;
  const controller = new AbortController();
  const idle = options.idleTimeoutMs ?? 60_000;
  let timer = setTimeout(() => controller.abort(), idle);
  const progress = createProgress({ label: 'data fetch', total: 0, unit: 'bytes', quiet: options.quiet });
  try {
    let response: Response;
    try {
      response = await fetch(url, { redirect: 'follow', signal: controller.signal });
    } catch (err) {
      const code = errorCode(err);
      if (NETWORK_CODES.has(code)) throw offlineHelp(url, code === 'ABORT_ERR' ? `no answer in ${idle} ms` : code);
      throw new PocovidError(`cannot download ${url}: ${code}`, { cause: err });
    }
    if (!response.ok || !response.body) throw new PocovidError(`cannot download ${url}: HTTP ${response.status} ${response.statusText}`);
    progress.setTotal(Number(response.headers.get('content-length') ?? 0));
    mkdirSync(join(file, '..'), { recursive: true });
    const sink = createWriteStream(part);
    let bytes = 0;
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(), idle);
        bytes += chunk.length;
        if (!sink.write(chunk)) await new Promise<void>((resolve) => sink.once('drain', () => resolve()));
        progress.update(bytes);
      }
    } catch (err) {
      const code = errorCode(err);
      throw NETWORK_CODES.has(code) ? offlineHelp(url, `connection lost after ${bytes} bytes: ${code}`) : err;
    } finally {
      await new Promise<void>((resolve, reject) => sink.end((e?: Error | null) => (e ? reject(e) : resolve())));
    }
    renameSync(part, file);
    return bytes;
  } finally {
    clearTimeout(timer);
    progress.stop();
    rmSync(part, { force: true });
  }
}

/** The path inside data/ of an archive entry ("<repo>-<branch>/data/x" or "data/x"), or undefined. */
export function dataPathOf(entryName: string): string | undefined {
  const m = /^(?:[^/]+\/)?data\/(.+)$/.exec(entryName);
  return m?.[1];
}

function safeRelative(archive: string, name: string, rel: string): string {
  const normal = normalize(rel);
  if (isAbsolute(normal) || normal.split(sep).includes('..')) throw new BadInputError(archive, `entry "${name}" would be written outside the output folder`);
  return normal;
}

/** Extracts the data/ folder of a repository zip into out; returns files and bytes written. */
export function extractDataFolder(archive: string, out: string, options: { quiet?: boolean } = {}): { files: number; bytes: number } {
  const zip = ZipReader.open(archive);
  try {
    const wanted = zip.entries.filter((e) => !e.isDirectory && !e.isSymlink && dataPathOf(e.name) !== undefined);
    if (wanted.length === 0) throw new BadInputError(archive, 'no data/ folder inside: is this the POCUS repository archive?');
    const progress = createProgress({ label: 'data extract', total: wanted.length, quiet: options.quiet, unit: 'items' });
    let bytes = 0;
    wanted.forEach((entry, i) => {
      const rel = safeRelative(archive, entry.name, dataPathOf(entry.name)!);
      const data = zip.read(entry);
      writeFileAtomicSync(join(out, rel), data);
      bytes += data.length;
      if (i % 25 === 24 || i === wanted.length - 1) progress.update(i + 1, rel);
    });
    progress.stop();
    return { files: wanted.length, bytes };
  } finally {
    zip.close();
  }
}

/** Downloads (or takes --archive) and extracts the data/ folder into options.out. */
export async function fetchPocusData(options: FetchOptions): Promise<FetchResult> {
  mkdirSync(options.out, { recursive: true });
  let archive = options.archive;
  let downloaded = false;
  if (archive) {
    if (!existsSync(archive) || !statSync(archive).isFile()) throw new BadInputError(archive, 'no such archive file');
  } else {
    archive = join(options.out, '.pocus_repository.zip');
    await download(options.url ?? DEFAULT_POCUS_URL, archive, options);
    downloaded = true;
  }
  try {
    const { files, bytes } = extractDataFolder(archive, options.out, options);
    return { out: options.out, files, bytes, archive };
  } finally {
    if (downloaded && !options.keepArchive) rmSync(archive, { force: true });
  }
}
