// `pocovid data build`: a source folder (the POCUS layout, or one folder per class, optionally
// one per patient: layouts.ts) → PNG frames + manifest.csv + dataset.json.
// Each source is finished on its own (frames written under temporary names and renamed, then a
// done-marker with its rows and each frame's sha256), so a re-run reuses finished sources whose
// frames are intact and an interrupted build resumes. Folds are computed over all rows at the end;
// more folds than patient groups are refused.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import sharp from 'sharp';
import { PocovidError, UnknownChoiceError } from '../errors.js';
import { writeFileAtomic, writeJsonAtomicSync, writeFileAtomicSync } from '../util/atomic.js';
import { VERSION } from '../version.js';
import { loadCropFile, type CropSpec } from './crop.js';
import { findFfmpeg, type LimitOptions } from '../media/ffmpeg.js';
import { assignFolds } from './folds.js';
import { encodePng } from './image.js';
import { listBuildSources, skipReason, type Layout, type SourceItem } from './layouts.js';
import { formatManifest } from './manifest.js';
import { PatientIndex } from './metadata.js';
import { DEFAULT_SALT_FILE, loadOrCreatePatientKey, type PatientKey } from './patient_key.js';
import { createProgress } from './progress.js';
import { decodeSourceFrames, type SourceFrames } from './source_frames.js';
import { ALL_PROBES, type Probe } from './sources.js';
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
  /** Class-folder layouts: the folder name of a class (default: the class name, any case). */
  classMap?: ReadonlyMap<ClassName, string>;
  /** Secret salt for DICOM Patient ID pseudonyms (patient_key.ts); default <out>/patient-salt. */
  patientSalt?: string;
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
  /** DICOM sources: what the header said, for the warnings of later runs that reuse the source. */
  dicom?: SourceFrames['dicom'];
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

/**
 * k-fold cross-validation needs at least k groups (patients, or videos with --group-by video): a
 * fold without one has no test frames, and `cv` would fail long after the build said it was done.
 */
function checkFoldsFit(folds: number, groups: number, groupBy: GroupBy, layout: Layout, skipped = 0): void {
  if (folds <= groups) return;
  if (groups < 2) throw new PocovidError(`--folds ${folds}, but there ${groups === 1 ? 'is only 1' : 'are 0'} ${groupBy === 'patient' ? 'patient group' : 'video or image'}${skipped > 0 ? ` after ${skipped} source(s) were skipped` : ''}: cross-validation needs at least 2`);
  const patientsFrom = layout === 'pocus' ? 'dataset_metadata.csv "Patient ID"' : 'patient folders DIR/<class>/<patient>/';
  const what = groupBy === 'patient' ? `patient groups (${patientsFrom}, else a DICOM file's Patient ID; a source without either is its own patient)` : 'videos and images (--group-by video)';
  const unread = skipped > 0 ? ` after ${skipped} source(s) were skipped` : '';
  throw new PocovidError(`--folds ${folds}, but there are only ${groups} ${what}${unread}: use --folds ${Math.max(2, groups)} or fewer`);
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
    classMap: options.classMap ? Object.fromEntries(options.classMap) : null,
    patientSalt: options.patientSalt ?? join(options.out, DEFAULT_SALT_FILE),
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

  const listing = await listBuildSources(options.source, { probes: opts.probes, classes: opts.classes, classMap: options.classMap });
  const skipped = [...listing.skipped];
  const work = listing.items;
  if (work.length === 0 && listing.layout === 'pocus' && skipped.every((s) => s.reason.startsWith('a folder'))) {
    throw new PocovidError(`no sources under ${options.source}/pocus_{videos,images}/{${opts.probes.join(',')}}: is it a POCUS data/ folder?`);
  }
  // Created (or read) only when a DICOM file's patient has to come from its Patient ID.
  let patientKey: PatientKey | undefined;
  const key = () => (patientKey ??= loadOrCreatePatientKey(opts.patientSalt));
  // A salt file that exists is checked now: a bad one must stop the build, not skip every source.
  if (existsSync(opts.patientSalt)) key();
  const dicomFacts = new Map<string, NonNullable<SourceFrames['dicom']>>();
  // The patient known without decoding: the patient folder, else dataset_metadata.csv (POCUS).
  const knownPatient = (item: SourceItem): string | undefined => item.patientFolder ?? (item.probe === 'unknown' ? undefined : patients.patientOf(item.name, item.probe));
  // Refused before anything is decoded: a fold needs at least one patient (or video) of its own.
  // A DICOM file whose patient comes from its Patient ID counts as a group of its own here, so
  // this refuses only what decoding cannot change; the check after decoding counts pseudonyms.
  const groupOfSource = (item: SourceItem) => (opts.groupBy === 'patient' ? `patient:${knownPatient(item) ?? item.rel}` : `video:${item.rel}`);
  checkFoldsFit(opts.folds, new Set(work.map(groupOfSource)).size, opts.groupBy, listing.layout);

  const progress = createProgress({ label: 'data build', total: work.length, quiet: options.quiet });
  const framesOf = new Map<string, FrameRow[]>();
  const decodedSources: string[] = [];
  const reused: string[] = [];
  let finished = 0;

  const processOne = async (item: SourceItem): Promise<string> => {
    const { label } = item;
    const crop = crops.get(item.rel);
    // Patient: the patient folder, else dataset_metadata.csv (POCUS), else the DICOM Patient ID's
    // pseudonym, else the file itself.
    const known = knownPatient(item);
    const fromDicom = item.kind === 'dicom' && known === undefined;
    // The marker key covers everything that changes the frames or their rows; a change redoes the
    // source. (Same key as before DICOM support, so existing datasets are reused.)
    const markerKey = JSON.stringify({ fps: opts.fps, maxFrames: opts.maxFrames, size: opts.size, crop: crop ?? null, label, patient: fromDicom ? null : known ?? item.rel, ...(fromDicom ? { salt: key().fingerprint } : {}) });
    const marker = markerPath(options.out, item.rel);
    if (existsSync(marker)) {
      try {
        const done = JSON.parse(readFileSync(marker, 'utf8')) as DoneMarker;
        // A frame file is reused only if it is byte for byte what was written (a truncated PNG
        // still exists); markers from before frames were hashed are redone.
        if (done.key === markerKey && done.source === item.rel && framesIntact(options.out, done)) {
          framesOf.set(item.rel, done.rows);
          if (done.dicom) dicomFacts.set(item.rel, done.dicom);
          reused.push(item.rel);
          return `${item.rel}: reused ${done.rows.length} frame(s)`;
        }
      } catch {
        // unreadable marker: decode again
      }
    }
    const path = join(options.source, item.rel);
    const decoded = await decodeSourceFrames(path, item.type, {
      fps: opts.fps, maxFrames: opts.maxFrames, size: opts.size, crop, timeoutMs: options.timeoutMs, maxBytes: options.maxBytes,
      ...(fromDicom ? { pseudonymize: (v: string) => key().pseudonym(v) } : {}),
    });
    const patient = known ?? decoded.dicom?.patient ?? item.rel;
    const base = { label, source: item.rel, patient, probe: item.probe, kind: decoded.kind } as const;
    const rows: FrameRow[] = [];
    const digests: FileDigest[] = [];
    for (const frame of decoded.frames) {
      const rel = decoded.kind === 'video' ? `${item.frameStem}_${String(frame.frame).padStart(5, '0')}.png` : `${item.frameStem}.png`;
      const png = await encodePng(frame.rgb, frame.width, frame.height);
      await writeFileAtomic(join(options.out, rel), png);
      digests.push(digestOf(png));
      rows.push({ ...base, path: rel, frame: frame.frame, time: frame.time });
    }
    writeJsonAtomicSync(marker, { source: item.rel, key: markerKey, rows, files: digests, ...(decoded.dicom ? { dicom: decoded.dicom } : {}) } satisfies DoneMarker);
    if (decoded.dicom) dicomFacts.set(item.rel, decoded.dicom);
    framesOf.set(item.rel, rows);
    decodedSources.push(item.rel);
    return `${item.rel}: ${rows.length} frame(s)`;
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
        const reason = skipReason(err, join(options.source, item.rel));
        skipped.push({ source: item.rel, reason });
        note = `${item.rel}: skipped (${reason})`;
      }
      progress.update(++finished, note);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 2) }, worker));
  progress.stop();

  // Rows in source order, so that the manifest does not depend on which worker finished first.
  const frameRows = work.flatMap((w) => framesOf.get(w.rel) ?? []);
  const groupOf = (r: FrameRow) => (opts.groupBy === 'patient' ? `patient:${r.patient}` : `video:${r.source}`);
  // Sources that could not be read may have taken whole patients with them.
  checkFoldsFit(opts.folds, new Set(frameRows.map(groupOf)).size, opts.groupBy, listing.layout, skipped.length);
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
  info.layout = listing.layout;
  info.warnings = [...warnings, ...sourceWarnings(listing.layout, work, framesOf, dicomFacts)];
  if (patientKey) {
    // Where the salt lives and which salt it was, never the salt itself (patient_key.ts).
    const saltFile = isAbsolute(opts.patientSalt) && relative(options.out, opts.patientSalt).startsWith('..') ? opts.patientSalt : relative(options.out, opts.patientSalt) || opts.patientSalt;
    info.patientPseudonyms = {
      method: 'dcm- + first 16 hex digits of HMAC-SHA256(salt, Issuer of Patient ID + NUL + Patient ID)',
      saltFile,
      saltFingerprint: patientKey.fingerprint,
      sources: [...dicomFacts.values()].filter((d) => d.patient !== undefined).length,
    };
  }
  info.synthetic = existsSync(join(options.source, 'phantom.json'));
  info.elapsedSeconds = Math.round((Date.now() - started) / 100) / 10;
  writeFileAtomicSync(join(options.out, 'manifest.csv'), formatManifest(rows));
  writeJsonAtomicSync(join(options.out, 'dataset.json'), info);
  return { info, rows, decoded: decodedSources, reused };
}

/** Warnings a user must see about sources that were built: unknown patients, assumed frame rates, burned-in text. */
function sourceWarnings(layout: Layout, work: SourceItem[], framesOf: Map<string, FrameRow[]>, dicom: Map<string, NonNullable<SourceFrames['dicom']>>): string[] {
  const built = work.filter((w) => framesOf.has(w.rel));
  const list = (items: SourceItem[]) => `${items.slice(0, 5).map((w) => w.rel).join(', ')}${items.length > 5 ? `, … (${items.length} in all)` : ''}`;
  const out: string[] = [];
  if (layout === 'class-folders') {
    const alone = built.filter((w) => w.patientFolder === undefined && framesOf.get(w.rel)![0]?.patient === w.rel);
    if (alone.length > 0) {
      out.push(`${alone.length} file(s) have no patient folder and no DICOM Patient ID, so each is its own patient and grouping by patient is unknown for them (put each patient's files in DIR/<class>/<patient>/): ${list(alone)}`);
    }
  }
  const assumed = built.filter((w) => dicom.get(w.rel)?.fpsSource.startsWith('assumed') && dicom.get(w.rel)!.frameCount > 1);
  if (assumed.length > 0) out.push(`${assumed.length} DICOM cine loop(s) have no Frame Time, Frame Time Vector or Cine Rate; 25 frames per second was assumed for sampling: ${list(assumed)}`);
  const burned = built.filter((w) => dicom.get(w.rel)?.burnedInAnnotation);
  if (burned.length > 0) {
    out.push(`${burned.length} DICOM file(s) say their pixels carry burned-in annotations (0028,0301 = YES), which may include names or IDs; the frames were written as they are: ${list(burned)}`);
  }
  return out;
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
