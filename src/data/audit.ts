// `pocovid data audit D`: does anything cross the folds of a built dataset? It checks
//   - patients in two or more folds (and sources, which a healthy manifest never splits);
//   - the same source file under two names (sha256 of the source files, when the source folder
//     the dataset was built from can be found);
//   - near-duplicate frames of different sources (a perceptual hash, phash.ts: at most
//     maxDistance of 255 bits apart, default 32);
//   - frames that cannot be read;
// and counts classes, sources and patients per fold. A finding that crosses folds is a leak;
// the same picture under two patients in one fold is reported too (another split would leak it).
// Sources that are merely similar (most frames of one within similarDistance of the other: a
// second clip of the same scan, or the same patient under two IDs) are reported for a person to
// look at, and are not counted as leaks. Writes nothing itself: the caller saves the report.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { PocovidError } from '../errors.js';
import { VERSION } from '../version.js';
import { openDataset } from './dataset.js';
import { distanceAt, HASH_BITS, HASH_WORDS, perceptualHash } from './phash.js';
import { createProgress } from './progress.js';
import type { ManifestRow } from './types.js';

/** Frames at most this many bits apart (of 255) are the same picture: see phash.ts. */
export const DEFAULT_MAX_DISTANCE = 32;
/** Looser distance for "similar sources". */
export const DEFAULT_SIMILAR_DISTANCE = 56;
/** Share of the shorter source's frames that must have a partner within similarDistance. */
export const DEFAULT_SIMILAR_SHARE = 0.5;

export interface AuditOptions {
  maxDistance?: number;
  similarDistance?: number;
  similarShare?: number;
  /** Source folder for the same-file check (default: the one dataset.json names, if found). */
  source?: string;
  /** Frames hashed at once. */
  concurrency?: number;
  quiet?: boolean;
}

interface SourceRef {
  source: string;
  fold: number;
  patient: string;
  label: string;
}

export interface AuditReport {
  tool: string;
  dataset: string;
  options: { maxDistance: number; similarDistance: number; similarShare: number; hashBits: number; source: string | null };
  elapsedSeconds: number;
  groupBy: string;
  totals: { frames: number; sources: number; patients: number; folds: number };
  perFold: { fold: number; frames: Record<string, number>; sources: number; patients: number }[];
  unreadable: { path: string; source: string; reason: string }[];
  patientsInSeveralFolds: { patient: string; folds: number[]; sources: number }[];
  sourcesInSeveralFolds: { source: string; folds: number[] }[];
  sameFile: { checked: boolean; note: string; groups: { sha256: string; sources: SourceRef[]; crossFold: boolean }[] };
  nearDuplicates: { a: SourceRef; b: SourceRef; framePairs: number; minDistance: number; example: [string, string]; crossFold: boolean }[];
  similarSources: { a: SourceRef; b: SourceRef; share: number; crossFold: boolean }[];
  leaks: { patients: number; sources: number; sameFile: number; nearDuplicates: number };
  leaking: boolean;
}

function checkOptions(options: AuditOptions) {
  const maxDistance = options.maxDistance ?? DEFAULT_MAX_DISTANCE;
  const similarDistance = Math.max(options.similarDistance ?? DEFAULT_SIMILAR_DISTANCE, maxDistance);
  const similarShare = options.similarShare ?? DEFAULT_SIMILAR_SHARE;
  for (const [name, value] of [['max distance', maxDistance], ['similar distance', similarDistance]] as const) {
    if (!(Number.isInteger(value) && value >= 0 && value <= HASH_BITS)) throw new PocovidError(`audit ${name} must be an integer in 0..${HASH_BITS}, got ${value}`);
  }
  if (!(similarShare > 0 && similarShare <= 1)) throw new PocovidError(`audit similar share must be in (0, 1], got ${similarShare}`);
  return { maxDistance, similarDistance, similarShare };
}

/** The folder the dataset was built from: `given`, else dataset.json's source resolved from here or from the dataset's ancestors. */
function findSourceFolder(dataset: string, recorded: unknown, rows: ManifestRow[], given?: string): string | undefined {
  const probe = rows[0]?.source;
  const valid = (dir: string) => probe !== undefined && existsSync(join(dir, probe));
  if (given !== undefined) {
    if (!valid(given)) throw new PocovidError(`--source ${given}: does not hold the dataset's sources (no ${probe ?? 'sources'})`);
    return given;
  }
  if (typeof recorded !== 'string') return undefined;
  const candidates = isAbsolute(recorded) ? [recorded] : [resolve(recorded), resolve(dataset, recorded), resolve(dataset, '..', recorded), resolve(dataset, '..', '..', recorded)];
  return candidates.find(valid);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Runs jobs with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, job: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, limit) }, async () => {
    while (next < items.length) {
      const i = next++;
      await job(items[i]!, i);
    }
  }));
}

export async function auditDataset(dir: string, options: AuditOptions = {}): Promise<AuditReport> {
  const started = Date.now();
  const { maxDistance, similarDistance, similarShare } = checkOptions(options);
  const { rows, info } = openDataset(dir);
  const ref = (r: ManifestRow): SourceRef => ({ source: r.source, fold: r.fold, patient: r.patient, label: r.label });

  // Counts per fold.
  const perFold = Array.from({ length: info.folds }, (_, fold) => ({ fold, frames: Object.fromEntries(info.classes.map((c) => [c, 0])) as Record<string, number>, sources: new Set<string>(), patients: new Set<string>() }));
  const foldsOfPatient = new Map<string, Set<number>>();
  const sourcesOfPatient = new Map<string, Set<string>>();
  const foldsOfSource = new Map<string, Set<number>>();
  const firstRowOfSource = new Map<string, ManifestRow>();
  for (const r of rows) {
    const f = perFold[r.fold]!;
    f.frames[r.label] = (f.frames[r.label] ?? 0) + 1;
    f.sources.add(r.source);
    f.patients.add(r.patient);
    foldsOfPatient.set(r.patient, (foldsOfPatient.get(r.patient) ?? new Set()).add(r.fold));
    sourcesOfPatient.set(r.patient, (sourcesOfPatient.get(r.patient) ?? new Set()).add(r.source));
    foldsOfSource.set(r.source, (foldsOfSource.get(r.source) ?? new Set()).add(r.fold));
    if (!firstRowOfSource.has(r.source)) firstRowOfSource.set(r.source, r);
  }
  const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
  const patientsInSeveralFolds = [...foldsOfPatient].filter(([, f]) => f.size > 1).map(([patient, f]) => ({ patient, folds: sorted(f), sources: sourcesOfPatient.get(patient)!.size }));
  const sourcesInSeveralFolds = [...foldsOfSource].filter(([, f]) => f.size > 1).map(([source, f]) => ({ source, folds: sorted(f) }));

  // The same file under two names.
  const sourceFolder = findSourceFolder(dir, info.options?.source, rows, options.source);
  const sameFile: AuditReport['sameFile'] = { checked: false, note: '', groups: [] };
  if (sourceFolder) {
    const bySha = new Map<string, SourceRef[]>();
    let missing = 0;
    await pool([...firstRowOfSource.values()], 2, async (r) => {
      const path = join(sourceFolder, r.source);
      if (!existsSync(path)) return void missing++;
      const sha = await sha256File(path);
      bySha.set(sha, [...(bySha.get(sha) ?? []), ref(r)]);
    });
    sameFile.checked = true;
    sameFile.note = `sha256 of ${firstRowOfSource.size - missing} source file(s) under ${sourceFolder}${missing ? `; ${missing} no longer there` : ''}`;
    sameFile.groups = [...bySha].filter(([, refs]) => refs.length > 1).map(([sha256, refs]) => ({
      sha256,
      sources: refs.sort((a, b) => a.source.localeCompare(b.source)),
      crossFold: new Set(refs.map((s) => s.fold)).size > 1,
    }));
  } else {
    sameFile.note = 'source folder not found (give --source): the same-file check was skipped; near-duplicate frames still find copies';
  }

  // Perceptual hashes of every frame.
  const hashes = new Uint32Array(rows.length * HASH_WORDS);
  const readable = new Uint8Array(rows.length);
  const unreadable: AuditReport['unreadable'] = [];
  const progress = createProgress({ label: 'data audit', total: rows.length, quiet: options.quiet });
  let done = 0;
  await pool(rows, options.concurrency ?? 4, async (r, i) => {
    const path = join(dir, r.path);
    try {
      if (!existsSync(path)) throw new Error('missing');
      hashes.set(await perceptualHash(readFileSync(path)), i * HASH_WORDS);
      readable[i] = 1;
    } catch (err) {
      unreadable.push({ path: r.path, source: r.source, reason: (err as Error).message === 'missing' ? 'missing' : `cannot decode (${(err as Error).message})` });
    }
    if (++done % 100 === 0 || done === rows.length) progress.update(done);
  });
  progress.stop();
  unreadable.sort((a, b) => a.path.localeCompare(b.path));

  // Every pair of frames from different sources. Quadratic, but a pair costs 8 popcounts: about
  // a second for 2,000 frames, a few minutes for 50,000.
  const near = new Map<string, AuditReport['nearDuplicates'][number]>();
  const partners = new Map<string, { a: Set<number>; b: Set<number> }>();
  const framesOfSource = new Map<string, number>();
  for (const r of rows) framesOfSource.set(r.source, (framesOfSource.get(r.source) ?? 0) + 1);
  for (let i = 0; i < rows.length; i++) {
    if (!readable[i]) continue;
    const ri = rows[i]!;
    for (let j = i + 1; j < rows.length; j++) {
      const rj = rows[j]!;
      if (!readable[j] || rj.source === ri.source) continue;
      const d = distanceAt(hashes, i, j);
      if (d > similarDistance) continue;
      const [x, y, xi, yi] = ri.source < rj.source ? [ri, rj, i, j] : [rj, ri, j, i];
      const key = `${x.source}\u0000${y.source}`;
      const p = partners.get(key) ?? { a: new Set<number>(), b: new Set<number>() };
      p.a.add(xi);
      p.b.add(yi);
      partners.set(key, p);
      if (d > maxDistance || (x.patient === y.patient && x.fold === y.fold)) continue;
      const entry = near.get(key) ?? { a: ref(x), b: ref(y), framePairs: 0, minDistance: d, example: [x.path, y.path] as [string, string], crossFold: x.fold !== y.fold };
      entry.framePairs++;
      if (d < entry.minDistance) Object.assign(entry, { minDistance: d, example: [x.path, y.path] });
      near.set(key, entry);
    }
  }
  const nearDuplicates = [...near.values()].sort((p, q) => Number(q.crossFold) - Number(p.crossFold) || p.minDistance - q.minDistance || p.a.source.localeCompare(q.a.source));
  const similarSources: AuditReport['similarSources'] = [];
  for (const [key, p] of partners) {
    const [a, b] = key.split('\u0000') as [string, string];
    const ra = firstRowOfSource.get(a)!;
    const rb = firstRowOfSource.get(b)!;
    if (ra.patient === rb.patient) continue;
    const na = framesOfSource.get(a)!;
    const nb = framesOfSource.get(b)!;
    const share = na <= nb ? p.a.size / na : p.b.size / nb;
    if (share >= similarShare) similarSources.push({ a: ref(ra), b: ref(rb), share: Math.round(share * 100) / 100, crossFold: ra.fold !== rb.fold });
  }
  similarSources.sort((p, q) => Number(q.crossFold) - Number(p.crossFold) || q.share - p.share || p.a.source.localeCompare(q.a.source));

  const leaks = {
    patients: patientsInSeveralFolds.length,
    sources: sourcesInSeveralFolds.length,
    sameFile: sameFile.groups.filter((g) => g.crossFold).length,
    nearDuplicates: nearDuplicates.filter((n) => n.crossFold).length,
  };
  return {
    tool: `pocovid ${VERSION}`,
    dataset: dir,
    options: { maxDistance, similarDistance, similarShare, hashBits: HASH_BITS, source: sourceFolder ?? null },
    elapsedSeconds: Math.round((Date.now() - started) / 100) / 10,
    groupBy: String(info.options?.groupBy ?? 'patient'),
    totals: { frames: rows.length, sources: firstRowOfSource.size, patients: foldsOfPatient.size, folds: info.folds },
    perFold: perFold.map((f) => ({ fold: f.fold, frames: f.frames, sources: f.sources.size, patients: f.patients.size })),
    unreadable,
    patientsInSeveralFolds,
    sourcesInSeveralFolds,
    sameFile,
    nearDuplicates,
    similarSources,
    leaks,
    leaking: leaks.patients + leaks.sources + leaks.sameFile + leaks.nearDuplicates > 0,
  };
}

const pair = (a: SourceRef, b: SourceRef) => `fold ${a.fold} ${a.source} ~ fold ${b.fold} ${b.source}`;

/** The report as text for a terminal: counts, each finding, and a verdict. */
export function formatAudit(report: AuditReport, limit = 20): string {
  const classes = Object.keys(report.perFold[0]?.frames ?? {});
  const lines: string[] = [];
  const { totals, options } = report;
  lines.push(`audit of ${report.dataset}: ${totals.frames} frames, ${totals.sources} sources, ${totals.patients} patients, ${totals.folds} folds (grouped by ${report.groupBy}; ${report.elapsedSeconds} s)`);
  lines.push(`fold ${classes.map((c) => c.padStart(10)).join('')}   sources  patients`);
  for (const f of report.perFold) lines.push(`${String(f.fold).padStart(4)} ${classes.map((c) => String(f.frames[c] ?? 0).padStart(10)).join('')} ${String(f.sources).padStart(9)} ${String(f.patients).padStart(9)}`);
  const section = <T>(title: string, items: T[], show: (item: T) => string) => {
    lines.push(`${title}: ${items.length === 0 ? 'none' : items.length}`);
    for (const item of items.slice(0, limit)) lines.push(`  ${show(item)}`);
    if (items.length > limit) lines.push(`  … and ${items.length - limit} more (see the JSON report)`);
  };
  section('patients in two or more folds', report.patientsInSeveralFolds, (p) => `patient ${p.patient}: folds ${p.folds.join(', ')} (${p.sources} sources)`);
  if (report.sourcesInSeveralFolds.length > 0) section('sources in two or more folds (the manifest was edited?)', report.sourcesInSeveralFolds, (s) => `${s.source}: folds ${s.folds.join(', ')}`);
  if (report.sameFile.checked) section(`same file under two names (${report.sameFile.note})`, report.sameFile.groups, (g) => `${g.crossFold ? 'ACROSS FOLDS ' : ''}${g.sources.map((s) => `fold ${s.fold} ${s.source}`).join(' = ')}`);
  else lines.push(`same file under two names: not checked (${report.sameFile.note})`);
  section(`near-duplicate frames of different sources (at most ${options.maxDistance} of ${options.hashBits} bits apart)`, report.nearDuplicates,
    (n) => `${n.crossFold ? 'ACROSS FOLDS ' : 'same fold, different patients '}${pair(n.a, n.b)}: ${n.framePairs} frame pair(s), closest ${n.minDistance} bits`);
  section(`similar sources of different patients, to check by eye (${Math.round(options.similarShare * 100)}% of the shorter one's frames within ${options.similarDistance} bits; not counted as leaks)`, report.similarSources,
    (s) => `${s.crossFold ? 'across folds ' : 'same fold '}${pair(s.a, s.b)}: ${Math.round(s.share * 100)}%`);
  section('unreadable frames', report.unreadable, (u) => `${u.path} (${u.source}): ${u.reason}`);
  const { leaks } = report;
  lines.push(report.leaking
    ? `LEAKAGE: ${[[leaks.patients, 'patient(s) in several folds'], [leaks.sources, 'source(s) in several folds'], [leaks.sameFile, 'file(s) copied across folds'], [leaks.nearDuplicates, 'near-duplicate source pair(s) across folds']].filter(([n]) => Number(n) > 0).map(([n, what]) => `${n} ${what}`).join(', ')}`
    : 'no leakage found across folds');
  if (report.groupBy === 'video' && leaks.patients > 0) lines.push('(built with --group-by video, the original protocol, which keeps videos, not patients, apart)');
  return lines.join('\n');
}
