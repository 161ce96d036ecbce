// Which files an input list names: files given directly are always taken (their type is sniffed
// from the bytes when they are read); folders are searched recursively for files whose extension
// is an image or video one, and every other file found there is listed as skipped, so that the
// user is told about it. DICOM files are taken whatever they are called (PACS exports often have
// no extension); a DICOMDIR only indexes the export it sits in. Shared by predict and export --int8
// calibration.
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { sniffFileSync } from './sniff.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff'];
export const VIDEO_EXTENSIONS = ['.mp4', '.avi', '.mov', '.gif', '.mpeg', '.mpg', '.m4v', '.webm', '.mkv', '.ts'];

export interface CollectedInputs {
  files: string[];
  /** Files inside the folders given whose extension is not an image or video one (hidden files aside). */
  skipped: string[];
}

/** Files named directly are always taken (their type is sniffed); folders contribute files with a known extension and DICOM files. */
export function collectInputs(paths: string[]): CollectedInputs {
  const known = new Set([...IMAGE_EXTENSIONS, ...VIDEO_EXTENSIONS]);
  const out: string[] = [];
  const skipped: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.') || name.toUpperCase() === 'DICOMDIR') continue;
      const path = join(dir, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else if (known.has(extname(name).toLowerCase()) || sniffFileSync(path)?.format === 'dicom') out.push(path);
      else skipped.push(path);
    }
  };
  for (const path of paths) {
    let stat;
    try {
      stat = statSync(path);
    } catch {
      out.push(path); // reported as unreadable when predicted
      continue;
    }
    if (stat.isDirectory()) walk(path);
    else out.push(path);
  }
  return { files: out, skipped };
}

