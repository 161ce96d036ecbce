// `pocovid data build`: a POCUS-layout folder → PNG frames + manifest.csv + dataset.json.
// Each source is finished on its own (frames written under temporary names and renamed, then a
// done-marker with its rows), so a re-run reuses finished sources and an interrupted build
// resumes. Folds are computed over all rows at the end.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { PocovidError, UnknownChoiceError } from '../errors.js';
import { writeFileAtomic, writeJsonAtomicSync, writeFileAtomicSync } from '../util/atomic.js';
import { VERSION } from '../version.js';
import { loadCropFile, type CropSpec } from './crop.js';
import { findFfmpeg, type LimitOptions } from '../media/ffmpeg.js';
import { decodeVideoFrames } from '../media/video.js';
import { assignFolds } from './folds.js';
import { decodeImage, encodePng } from './image.js';
import { formatManifest } from './manifest.js';
import { PatientIndex } from './metadata.js';
import { createProgress } from './progress.js';
import { ALL_PROBES, kindFromFileName, labelFromFileName, listSources, type Probe, type SourceFile } from './sources.js';
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
  const work: { file: SourceFile; label: ClassName; kind: 'video' | 'image' }[] = [];
  for (const file of files) {
    const label = labelFromFileName(file.name);
    const kind = kindFromFileName(file.name);
    if (!label) skipped.push({ source: file.rel, reason: 'unknown class prefix (expected Cov, Pne, Reg or Vir)' });
    else if (!opts.classes.includes(label)) skipped.push({ source: file.rel, reason: `class ${label} not in --classes` });
    else if (!kind) skipped.push({ source: file.rel, reason: 'unsupported file type' });
    else work.push({ file, label, kind });
  }
  if (work.length === 0 && files.length === 0) {
    throw new PocovidError(`no sources under ${options.source}/pocus_{videos,images}/{${opts.probes.join(',')}}: is it a POCUS data/ folder?`);
  }

  const progress = createProgress({ label: 'data build', total: work.length, quiet: options.quiet });
  const framesOf = new Map<string, FrameRow[]>();
  const decoded: string[] = [];
  const reused: string[] = [];
  let finished = 0;

  const processOne = async (item: (typeof work)[number]): Promise<string> => {
    const { file, label, kind } = item;
    const crop = crops.get(file.rel);
    const patient = patients.patientOf(file.name, file.probe) ?? file.rel;
    // The marker key covers everything that changes the frames; a change redoes the source.
    const key = JSON.stringify({ fps: opts.fps, maxFrames: opts.maxFrames, size: opts.size, crop: crop ?? null, label, patient });
    const marker = markerPath(options.out, file.rel);
    if (existsSync(marker)) {
      try {
        const done = JSON.parse(readFileSync(marker, 'utf8')) as DoneMarker;
        if (done.key === key && done.source === file.rel && done.rows.every((r) => existsSync(join(options.out, r.path)))) {
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
    const base = { label, source: file.rel, patient, probe: file.probe, kind } as const;
    if (kind === 'video') {
      const { frames } = await decodeVideoFrames(path, { fps: opts.fps, maxFrames: opts.maxFrames, size: opts.size, crop, timeoutMs: options.timeoutMs, maxBytes: options.maxBytes });
      for (const frame of frames) {
        const rel = `frames/${file.probe}/${stem}_${String(frame.sourceFrame).padStart(5, '0')}.png`;
        await writeFileAtomic(join(options.out, rel), await encodePng(frame.rgb, frame.width, frame.height));
        rows.push({ ...base, path: rel, frame: frame.sourceFrame, time: frame.time });
      }
    } else {
      const image = await decodeImage(path, opts.size, crop);
      const rel = `frames/${file.probe}/${stem}.png`;
      await writeFileAtomic(join(options.out, rel), await encodePng(image.rgb, image.width, image.height));
      rows.push({ ...base, path: rel, frame: 0, time: 0 });
    }
    writeJsonAtomicSync(marker, { source: file.rel, key, rows } satisfies DoneMarker);
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
        const reason = err instanceof Error ? err.message.replace(`${join(options.source, item.file.rel)}: `, '') : String(err);
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
  const folds = assignFolds(frameRows.map((r) => ({ group: groupOf(r), label: r.label })), opts.folds, opts.seed);
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
