// `pocovid data build`: a POCUS-layout folder → PNG frames + manifest.csv + dataset.json.
// Each source is finished on its own (frames written under temporary names and renamed, then a
// done-marker with its rows and each frame's sha256), so a re-run reuses finished sources whose
// frames are intact and an interrupted build resumes. Folds are computed over all rows at the end;
// more folds than patient groups are refused.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { PocovidError, UnknownChoiceError } from '../errors.js';
import { writeFileAtomic, writeJsonAtomicSync, writeFileAtomicSync } from '../util/atomic.js';
import { VERSION } from '../version.js';
import { loadCropFile, type CropSpec } from './crop.js';
import { findFfmpeg } from '../media/ffmpeg.js';
import { type LimitOptions } from '../media/limits.js';
import { decodeVideoFrames } from '../media/video.js';
import { assignFolds } from './folds.js';
import { decodeImage, encodePng } from './image.js';
import { formatManifest } from './manifest.js';
import { PatientIndex } from './metadata.js';
import { createProgress } from './progress.js';
import { ALL_PROBES, labelFromFileName, listSources, type Probe, type SourceFile } from './sources.js';
import { sniffFile } from '../media/sniff.js';
import { type SniffedType } from '../media/formats.js';
import { digestOf, readVerified, type FileDigest } from '../util/integrity.js';
import { ALL_CLASSES, type ClassName, type DatasetInfo, type ManifestRow } from './types.js';

export type GroupBy = 'patient' | 'video';

export interface BuildOptions extends LimitOptions {
  source: string;
  out: string;
  fps?: number;
  maxFrames?: number;
  size?: number;
  probes?: Probe[];
  classes?: ClassName[];
  folds?: number;
  seed?: number;
  groupBy?: GroupBy;
  /** crop.json path; default <source>/crop.json when present. */
  crop?: string;
  /** Sources decoded at once (default 2). */
  concurrency?: number;
  /** No progress output. */
  quiet?: boolean;
}

export interface BuildResult {
  info: DatasetInfo;
  rows: ManifestRow[];
  /** Sources decoded by this run (the others were reused from an earlier run). */
  decoded: string[];
  reused: string[];
}

type FrameRow = Omit<ManifestRow, 'fold'>;

interface DoneMarker {
  source: string;
  key: string;
  rows: FrameRow[];
  /** sha256 and size of each row's PNG, in row order. */
  files?: FileDigest[];
}

/** Whether every frame a marker lists is on disk exactly as it was written. */
function framesIntact(out: string, done: DoneMarker): boolean {
  if (!done.files || done.files.length !== done.rows.length) return false;
  return done.rows.every((row, i) => {
    try {
      readVerified(join(out, row.path), done.files![i]!, 'its source marker');
      return true;
    } catch {
      return false;
    }
  });
}

/** An error's message without the file path in front (the skipped list names the source itself). */
function reasonOf(err: unknown, path: string): string {
  return err instanceof Error ? err.message.replace(`${path}: `, '') : String(err);
}

/**
 * k-fold cross-validation needs at least k groups (patients, or videos with --group-by video): a
 * fold without one has no test frames, and `cv` would fail long after the build said it was done.
 */
function checkFoldsFit(folds: number, groups: number, groupBy: GroupBy, skipped = 0): void {
  if (folds <= groups) return;
  if (groups < 2) throw new PocovidError(`--folds ${folds}, but there ${groups === 1 ? 'is only 1' : 'are 0'} ${groupBy === 'patient' ? 'patient group' : 'video or image'}${skipped > 0 ? ` after ${skipped} source(s) were skipped` : ''}: cross-validation needs at least 2`);
  const what = groupBy === 'patient' ? 'patient groups (dataset_metadata.csv "Patient ID"; a source without one is its own patient)' : 'videos and images (--group-by video)';
  const unread = skipped > 0 ? ` after ${skipped} source(s) were skipped` : '';
  throw new PocovidError(`--folds ${folds}, but there are only ${groups} ${what}${unread}: use --folds ${Math.max(2, groups)} or fewer`);
}

/** A file-system-safe name for a source's frames: X.gif and X.mp4 must not collide. */
function frameStem(file: SourceFile): string {
  return file.name.replace(/\.([^.]+)$/, '_$1').replace(/[^A-Za-z0-9._+-]/g, '_');
}

function markerPath(out: string, rel: string): string {
  return join(out, '.sources', `${createHash('sha1').update(rel).digest('hex').slice(0, 16)}.json`);
}

/** Removes temporary files left by a killed run (atomic writes use dot-names ending in .tmp). */
function sweepTemporaries(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sweepTemporaries(path);
    else if (entry.name.startsWith('.') && entry.name.endsWith('.tmp')) rmSync(path, { force: true });
  }
}

function resolveOptions(options: BuildOptions) {
  const classes = options.classes ?? ['covid', 'pneumonia', 'regular'];
  for (const c of classes) if (!ALL_CLASSES.includes(c)) throw new UnknownChoiceError('class', c, ALL_CLASSES);
  const probes = options.probes ?? ['convex'];
  for (const p of probes) if (!ALL_PROBES.includes(p)) throw new UnknownChoiceError('probe', p, ALL_PROBES);
  const groupBy = options.groupBy ?? 'patient';
  if (groupBy !== 'patient' && groupBy !== 'video') throw new UnknownChoiceError('grouping', groupBy, ['patient', 'video']);
  const resolved = {
    source: options.source,
    fps: options.fps ?? 3,
    maxFrames: options.maxFrames ?? 30,
    size: options.size ?? 224,
    probes,
    classes,
    folds: options.folds ?? 5,
    seed: options.seed ?? 0,
    groupBy,
    crop: options.crop ?? (existsSync(join(options.source, 'crop.json')) ? join(options.source, 'crop.json') : null),
  };
  if (!(resolved.fps > 0)) throw new PocovidError(`--fps must be positive, got ${resolved.fps}`);
  if (!(Number.isInteger(resolved.maxFrames) && resolved.maxFrames >= 1)) throw new PocovidError(`--max-frames must be a positive integer, got ${resolved.maxFrames}`);
  if (!(Number.isInteger(resolved.size) && resolved.size >= 8 && resolved.size <= 4096)) throw new PocovidError(`--size must be an integer in 8..4096, got ${resolved.size}`);
  if (!(Number.isInteger(resolved.folds) && resolved.folds >= 2)) throw new PocovidError(`--folds must be an integer of at least 2, got ${resolved.folds}`);
  return resolved;
}

export async function buildDataset(options: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const opts = resolveOptions(options);
  if (!existsSync(options.source)) throw new PocovidError(`source folder ${options.source} does not exist`);
  const warnings: string[] = [];
  const crops: Map<string, CropSpec> = opts.crop ? loadCropFile(opts.crop, (p) => warnings.push(p)) : new Map();
  const metadataPath = join(options.source, 'dataset_metadata.csv');
  const patients = existsSync(metadataPath) ? PatientIndex.fromFile(metadataPath) : PatientIndex.empty();
  const ffmpeg = findFfmpeg();
  sweepTemporaries(options.out);

  const skipped: { source: string; reason: string }[] = [];
  const { files, folders } = listSources(options.source, opts.probes);
  for (const folder of folders) skipped.push({ source: folder, reason: 'a folder (sub-folders are not scanned)' });
  const work: { file: SourceFile; label: ClassName; type: SniffedType }[] = [];
  for (const file of files) {
    const label = labelFromFileName(file.name);
    if (!label) skipped.push({ source: file.rel, reason: 'unknown class prefix (expected Cov, Pne, Reg or Vir)' });
    else if (!opts.classes.includes(label)) skipped.push({ source: file.rel, reason: `class ${label} not in --classes` });
    else {
      // Typed from its bytes, as predict types a file (a PNG named .mp4 is an image to both).
      try {
        work.push({ file, label, type: await sniffFile(join(options.source, file.rel)) });
      } catch (err) {
        skipped.push({ source: file.rel, reason: reasonOf(err, join(options.source, file.rel)) });
      }
    }
  }
  if (work.length === 0 && files.length === 0) {
    throw new PocovidError(`no sources under ${options.source}/pocus_{videos,images}/{${opts.probes.join(',')}}: is it a POCUS data/ folder?`);
  }
  const groupOfSource = (file: SourceFile) => (opts.groupBy === 'patient' ? `patient:${patients.patientOf(file.name, file.probe) ?? file.rel}` : `video:${file.rel}`);
  // Refused before anything is decoded: a fold needs at least one patient (or video) of its own.
  checkFoldsFit(opts.folds, new Set(work.map((w) => groupOfSource(w.file))).size, opts.groupBy);

  const progress = createProgress({ label: 'data build', total: work.length, quiet: options.quiet });
  const framesOf = new Map<string, FrameRow[]>();
  const decoded: string[] = [];
  const reused: string[] = [];
  let finished = 0;

  const processOne = async (item: (typeof work)[number]): Promise<string> => {
    const { file, label, type } = item;
    const kind = type.kind;
    const crop = crops.get(file.rel);
    const patient = patients.patientOf(file.name, file.probe) ?? file.rel;
    // The marker key covers everything that changes the frames; a change redoes the source.
    const key = JSON.stringify({ fps: opts.fps, maxFrames: opts.maxFrames, size: opts.size, crop: crop ?? null, label, patient });
    const marker = markerPath(options.out, file.rel);
    if (existsSync(marker)) {
      try {
        const done = JSON.parse(readFileSync(marker, 'utf8')) as DoneMarker;
        // A frame file is reused only if it is byte for byte what was written (a truncated PNG
        // still exists); markers from before frames were hashed are redone.
        if (done.key === key && done.source === file.rel && framesIntact(options.out, done)) {
          framesOf.set(file.rel, done.rows);
          reused.push(file.rel);
          return `${file.rel}: reused ${done.rows.length} frame(s)`;
        }
      } catch {
        // unreadable marker: decode again
      }
    }
    const path = join(options.source, file.rel);
    const stem = frameStem(file);
    const rows: FrameRow[] = [];
    const digests: FileDigest[] = [];
    const base = { label, source: file.rel, patient, probe: file.probe, kind } as const;
    const writeFrame = async (rel: string, rgb: Uint8Array, width: number, height: number): Promise<void> => {
      const png = await encodePng(rgb, width, height);
      await writeFileAtomic(join(options.out, rel), png);
      digests.push(digestOf(png));
    };
    const limits = { timeoutMs: options.timeoutMs, maxBytes: options.maxBytes };
    if (kind === 'video') {
      const { frames } = await decodeVideoFrames(path, { fps: opts.fps, maxFrames: opts.maxFrames, size: opts.size, crop, type, ...limits });
      for (const frame of frames) {
        const rel = `frames/${file.probe}/${stem}_${String(frame.sourceFrame).padStart(5, '0')}.png`;
        await writeFrame(rel, frame.rgb, frame.width, frame.height);
        rows.push({ ...base, path: rel, frame: frame.sourceFrame, time: frame.time });
      }
    } else {
      // BMP is decoded by ffmpeg (sharp cannot read it), as predict decodes it.
      const image = type.demuxer
        ? (await decodeVideoFrames(path, { fps: 1, maxFrames: 1, size: opts.size, crop, type, ...limits })).frames[0]!
        : await decodeImage(path, opts.size, crop);
      const rel = `frames/${file.probe}/${stem}.png`;
      await writeFrame(rel, image.rgb, image.width, image.height);
      rows.push({ ...base, path: rel, frame: 0, time: 0 });
    }
    writeJsonAtomicSync(marker, { source: file.rel, key, rows, files: digests } satisfies DoneMarker);
    framesOf.set(file.rel, rows);
    decoded.push(file.rel);
    return `${file.rel}: ${rows.length} frame(s)`;
  };

  // A small pool: each worker takes the next source; a failure is recorded, never thrown.
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const item = work[next++]!;
      let note: string;
      try {
        note = await processOne(item);
      } catch (err) {
        const reason = reasonOf(err, join(options.source, item.file.rel));
        skipped.push({ source: item.file.rel, reason });
        note = `${item.file.rel}: skipped (${reason})`;
      }
      progress.update(++finished, note);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 2) }, worker));
  progress.stop();

  // Rows in source order, so that the manifest does not depend on which worker finished first.
  const frameRows = work.flatMap((w) => framesOf.get(w.file.rel) ?? []);
  const groupOf = (r: FrameRow) => (opts.groupBy === 'patient' ? `patient:${r.patient}` : `video:${r.source}`);
  // Sources that could not be read may have taken whole patients with them.
  checkFoldsFit(opts.folds, new Set(frameRows.map(groupOf)).size, opts.groupBy, skipped.length);
  const folds = assignFolds(frameRows.map((r) => ({ group: groupOf(r), label: r.label })), opts.folds, opts.seed);
  const empty = Array.from({ length: opts.folds }, (_, k) => k).filter((k) => ![...folds.values()].includes(k));
  if (empty.length > 0) throw new PocovidError(`--folds ${opts.folds}: fold(s) ${empty.join(', ')} would get no ${opts.groupBy}; use fewer folds`);
  const rows: ManifestRow[] = frameRows.map((r) => ({ ...r, fold: folds.get(groupOf(r))! }));

  const info = describe(rows, opts, skipped.sort((a, b) => a.source.localeCompare(b.source)), {
    ffmpeg: `${ffmpeg.version} (${ffmpeg.origin}: ${ffmpeg.ffmpeg})`,
    sharp: sharp.versions.sharp ?? 'unknown',
    libvips: sharp.versions.vips,
    pocovid: VERSION,
    node: process.version,
  });
  info.warnings = warnings;
  info.synthetic = existsSync(join(options.source, 'phantom.json'));
  info.elapsedSeconds = Math.round((Date.now() - started) / 100) / 10;
  writeFileAtomicSync(join(options.out, 'manifest.csv'), formatManifest(rows));
  writeJsonAtomicSync(join(options.out, 'dataset.json'), info);
  return { info, rows, decoded, reused };
}

function describe(rows: ManifestRow[], opts: ReturnType<typeof resolveOptions>, skipped: DatasetInfo['skipped'], tools: Record<string, string>): DatasetInfo {
  const perClass: Record<string, number> = {};
  const perFold: Record<string, Record<string, number>> = {};
  const sourcesPerClass: Record<string, number> = {};
  const sourcesPerFold: Record<string, Record<string, number>> = {};
  const groupsPerFold: Record<string, number> = {};
  const seenSource = new Set<string>();
  const seenGroup = new Set<string>();
  for (let f = 0; f < opts.folds; f++) {
    perFold[f] = Object.fromEntries(opts.classes.map((c) => [c, 0]));
    sourcesPerFold[f] = Object.fromEntries(opts.classes.map((c) => [c, 0]));
    groupsPerFold[f] = 0;
  }
  for (const c of opts.classes) perClass[c] = sourcesPerClass[c] = 0;
  for (const r of rows) {
    perClass[r.label]!++;
    perFold[r.fold]![r.label]!++;
    if (!seenSource.has(r.source)) {
      seenSource.add(r.source);
      sourcesPerClass[r.label]!++;
      sourcesPerFold[r.fold]![r.label]!++;
    }
    const group = opts.groupBy === 'patient' ? r.patient : r.source;
    if (!seenGroup.has(group)) {
      seenGroup.add(group);
      groupsPerFold[r.fold]!++;
    }
  }
  return {
    options: { ...opts },
    classes: [...opts.classes],
    folds: opts.folds,
    counts: { perClass, perFold },
    sourceCounts: { perClass: sourcesPerClass, perFold: sourcesPerFold, groupsPerFold },
    tools,
    skipped,
  };
}
