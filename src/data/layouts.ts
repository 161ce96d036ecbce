// The folder layouts `data build --source DIR` accepts, and the list of source files each gives:
//   1. the POCUS repository's data/ folder: pocus_{videos,images}/{convex,linear}/<Cov|Pne|Reg|Vir>…
//      (labels from the file-name prefix, patients from dataset_metadata.csv);
//   2. one folder per class: DIR/<class>/<files> (each file its own patient, unless DICOM says);
//   3. one folder per class and per patient: DIR/<class>/<patient>/<files, any depth>.
// 2 and 3 mix freely. Class folders are named after the classes, in any letter case, or mapped
// with --class-map covid=COVID-19,regular=Healthy. A patient folder of the same name under two
// class folders is the same patient (a follow-up scan after recovery stays with its patient).
// Every file is typed from its bytes (src/media/sniff.ts), as predict types it, never from its
// name: DICOM files are found whatever they are called, and a file that is no accepted image,
// video or DICOM file is skipped with the reason.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PocovidError, UnknownChoiceError } from '../errors.js';
import type { SniffedType } from '../media/formats.js';
import { sniffFile } from '../media/sniff.js';
import { labelFromFileName } from './label_rules.js';
import { listSources, type Probe } from './sources.js';
import { ALL_CLASSES, type ClassName } from './types.js';

export type Layout = 'pocus' | 'class-folders';

export interface SourceItem {
  /** Relative to the source folder, '/'-separated: the manifest's `source` and crop.json's key. */
  rel: string;
  name: string;
  label: ClassName;
  /** Probe folder of the POCUS layout; 'unknown' in class-folder layouts. */
  probe: Probe | 'unknown';
  /** DICOM files are read by our own decoder, and may be a single image or a cine loop. */
  kind: 'video' | 'image' | 'dicom';
  /** The type sniffed from the file's bytes; the decoder is forced to it. */
  type: SniffedType;
  /** The patient folder (layout 3). */
  patientFolder?: string;
  /** Frames are written as <frameStem>_<native frame>.png (clips) or <frameStem>.png (images). */
  frameStem: string;
}

export interface SourceListing {
  layout: Layout;
  items: SourceItem[];
  skipped: { source: string; reason: string }[];
}

export interface ListOptions {
  probes: readonly Probe[];
  classes: readonly ClassName[];
  /** Folder name for a class (default: the class name, any case). */
  classMap?: ReadonlyMap<ClassName, string>;
}

/** The accepted layouts, for the error a user sees on anything else. */
export const ACCEPTED_LAYOUTS = [
  'the POCUS repository data/ folder: pocus_videos/{convex,linear}/ and pocus_images/{convex,linear}/ with files named Cov…, Pne…, Reg…, Vir…',
  'one folder per class: DIR/<class>/<files> (each file is its own patient)',
  'one folder per class and per patient: DIR/<class>/<patient>/<files> (files may sit deeper, e.g. a DICOM export)',
];

/** Parses --class-map "covid=COVID-19,regular=Healthy": class → folder name. */
export function parseClassMap(text: string, classes: readonly ClassName[]): Map<ClassName, string> {
  const map = new Map<ClassName, string>();
  const folders = new Set<string>();
  for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    const cls = pair.slice(0, Math.max(0, eq)).trim() as ClassName;
    const folder = pair.slice(eq + 1).trim();
    if (eq <= 0 || !folder) throw new PocovidError(`--class-map: "${pair}" is not class=folder (e.g. covid=COVID-19,regular=Healthy)`);
    if (!ALL_CLASSES.includes(cls)) throw new UnknownChoiceError('class in --class-map', cls, ALL_CLASSES);
    if (!classes.includes(cls)) throw new PocovidError(`--class-map names ${cls}, which is not in --classes (${classes.join(', ')})`);
    if (map.has(cls)) throw new PocovidError(`--class-map names ${cls} twice`);
    if (folders.has(folder.toLowerCase())) throw new PocovidError(`--class-map gives folder "${folder}" to two classes`);
    map.set(cls, folder);
    folders.add(folder.toLowerCase());
  }
  return map;
}

const SAFE = /[^A-Za-z0-9._+-]/g;

/** The POCUS layout's frame names (kept as they were: X.gif and X.mp4 must not collide). */
function pocusStem(name: string): string {
  return name.replace(/\.([^.]+)$/, '_$1').replace(SAFE, '_');
}

/** Frame names for class folders: the path below the class folder, made safe; a hash where that changed it. */
function classFolderStem(parts: string[]): string {
  const joined = parts.map((p) => p.replace(/\.([^.]+)$/, '_$1')).join('__');
  const safe = joined.replace(SAFE, '_');
  return safe === joined ? safe : `${safe}-${createHash('sha1').update(parts.join('/')).digest('hex').slice(0, 8)}`;
}

/** An error's message without the file path in front (the skipped list names the source itself). */
export function skipReason(err: unknown, path: string): string {
  return err instanceof Error ? err.message.replace(`${path}: `, '') : String(err);
}

/** A file's type from its bytes, or the reason it cannot be a source. */
async function typeOf(path: string): Promise<{ type: SniffedType; kind: SourceItem['kind'] } | { reason: string }> {
  try {
    const type = await sniffFile(path);
    return { type, kind: type.format === 'dicom' ? 'dicom' : type.kind };
  } catch (err) {
    return { reason: skipReason(err, path) };
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function entries(dir: string): string[] {
  return readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
}

/** Which class a folder name stands for, if any. */
function classOfFolder(folder: string, classMap: ReadonlyMap<ClassName, string> | undefined): ClassName | undefined {
  const lower = folder.toLowerCase();
  for (const cls of ALL_CLASSES) if ((classMap?.get(cls) ?? cls).toLowerCase() === lower) return cls;
  return undefined;
}

async function listPocus(dir: string, options: ListOptions): Promise<SourceListing> {
  const skipped: SourceListing['skipped'] = [];
  const items: SourceItem[] = [];
  const { files, folders } = listSources(dir, options.probes);
  for (const folder of folders) skipped.push({ source: folder, reason: 'a folder (sub-folders are not scanned)' });
  for (const file of files) {
    const label = labelFromFileName(file.name);
    if (!label) skipped.push({ source: file.rel, reason: 'unknown class prefix (expected Cov, Pne, Reg or Vir)' });
    else if (!options.classes.includes(label)) skipped.push({ source: file.rel, reason: `class ${label} not in --classes` });
    else {
      const typed = await typeOf(join(dir, file.rel));
      if ('reason' in typed) skipped.push({ source: file.rel, reason: typed.reason });
      else items.push({ rel: file.rel, name: file.name, label, probe: file.probe, ...typed, frameStem: `frames/${file.probe}/${pocusStem(file.name)}` });
    }
  }
  return { layout: 'pocus', items, skipped };
}

async function listClassFolders(dir: string, options: ListOptions): Promise<SourceListing> {
  const skipped: SourceListing['skipped'] = [];
  const items: SourceItem[] = [];
  const addFile = async (label: ClassName, classFolder: string, below: string[], patientFolder?: string): Promise<void> => {
    const name = below[below.length - 1]!;
    const rel = [classFolder, ...below].join('/');
    if (name.toUpperCase() === 'DICOMDIR') {
      skipped.push({ source: rel, reason: 'a DICOMDIR (the index of a DICOM export); its images are read from the other files' });
      return;
    }
    const typed = await typeOf(join(dir, rel));
    if ('reason' in typed) skipped.push({ source: rel, reason: typed.reason });
    else items.push({ rel, name, label, probe: 'unknown', ...typed, ...(patientFolder !== undefined ? { patientFolder } : {}), frameStem: `frames/${label}/${classFolderStem(below)}` });
  };
  const walkPatient = async (label: ClassName, classFolder: string, below: string[], patientFolder: string): Promise<void> => {
    const path = join(dir, classFolder, ...below);
    for (const name of entries(path)) {
      if (isDir(join(path, name))) await walkPatient(label, classFolder, [...below, name], patientFolder);
      else await addFile(label, classFolder, [...below, name], patientFolder);
    }
  };
  for (const folder of entries(dir)) {
    const path = join(dir, folder);
    if (!isDir(path)) {
      skipped.push({ source: folder, reason: 'not inside a class folder' });
      continue;
    }
    const label = classOfFolder(folder, options.classMap);
    if (!label) {
      skipped.push({ source: `${folder}/`, reason: `not a class folder (classes: ${options.classes.join(', ')}; name folders after them or map them with --class-map)` });
      continue;
    }
    if (!options.classes.includes(label)) {
      skipped.push({ source: `${folder}/`, reason: `class ${label} not in --classes` });
      continue;
    }
    for (const name of entries(path)) {
      if (isDir(join(path, name))) await walkPatient(label, folder, [name], name);
      else await addFile(label, folder, [name]);
    }
  }
  return { layout: 'class-folders', items, skipped };
}

/** Finds the layout of `dir` and lists its sources; a folder in no accepted layout gets an error listing them. */
export async function listBuildSources(dir: string, options: ListOptions): Promise<SourceListing> {
  if (existsSync(join(dir, 'pocus_videos')) || existsSync(join(dir, 'pocus_images'))) return listPocus(dir, options);
  const folders = entries(dir).filter((n) => isDir(join(dir, n)));
  if (folders.some((f) => classOfFolder(f, options.classMap) !== undefined)) return listClassFolders(dir, options);
  const found = entries(dir);
  const shown = found.length === 0 ? 'it is empty' : `it holds ${found.slice(0, 8).map((n) => (isDir(join(dir, n)) ? `${n}/` : n)).join(', ')}${found.length > 8 ? ', …' : ''}`;
  const mapped = options.classMap?.size ? ` (with --class-map: ${[...options.classMap].map(([c, f]) => `${c}=${f}`).join(', ')})` : '';
  throw new PocovidError(
    `${dir}: no known layout (${shown}). Accepted layouts:\n` +
      ACCEPTED_LAYOUTS.map((l, i) => `  ${i + 1}. ${l}`).join('\n') +
      `\nClass folders are named after --classes (${options.classes.join(', ')}), in any letter case${mapped}, or mapped with --class-map covid=COVID-19,regular=Healthy.`,
  );
}
