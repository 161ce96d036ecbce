// `pocovid predict` as a library: collect files (folders recursed), classify each, keep going past
// bad files, write optional heatmap PNGs, and format the results as a table, JSON or CSV.
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { BadInputError, PocovidError } from '../errors.js';
import { sniffFileSync } from '../media/sniff.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { VideoAggregation } from './combine.js';
import type { Pipeline, PredictionResult } from './pipeline.js';
import { dataUrlToBytes } from './png.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff'];
export const VIDEO_EXTENSIONS = ['.mp4', '.avi', '.mov', '.gif', '.mpeg', '.mpg', '.m4v', '.webm', '.mkv', '.ts'];

/**
 * Files named directly are always taken (their type is sniffed); folders contribute files with a
 * known extension, and DICOM files whatever they are called (PACS exports often have no extension).
 */
export function collectInputs(paths: string[]): string[] {
  const known = new Set([...IMAGE_EXTENSIONS, ...VIDEO_EXTENSIONS]);
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      // A DICOMDIR indexes the export it sits in; the images are the other files.
      if (name.startsWith('.') || name.toUpperCase() === 'DICOMDIR') continue;
      const path = join(dir, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else if (known.has(extname(name).toLowerCase()) || sniffFileSync(path)?.format === 'dicom') out.push(path);
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
  return out;
}

export type FileOutcome = ({ file: string; heatmapFile?: string } & Omit<PredictionResult, 'heatmap'>) | { file: string; error: string };

export interface PredictFilesOptions {
  fps?: number;
  maxFrames?: number;
  aggregation?: VideoAggregation;
  /** Folder for Grad-CAM overlay PNGs (one per file). */
  heatmaps?: string;
  /** Called after each file (progress, streaming output). */
  onResult?: (outcome: FileOutcome) => void;
}

function heatmapName(file: string, index: number): string {
  const base = basename(file, extname(file)).replace(/[^A-Za-z0-9._-]/g, '_');
  return `${String(index).padStart(4, '0')}_${base}.png`;
}

/** Classifies every file; a bad file becomes {file, error} and the rest go on. */
export async function predictFiles(pipeline: Pipeline, files: string[], options: PredictFilesOptions = {}): Promise<FileOutcome[]> {
  const outcomes: FileOutcome[] = [];
  for (const [index, file] of files.entries()) {
    let outcome: FileOutcome;
    try {
      const { heatmap, ...result } = await pipeline.predictFile(file, {
        fps: options.fps,
        maxFrames: options.maxFrames,
        aggregation: options.aggregation,
        heatmap: options.heatmaps !== undefined,
      });
      outcome = { file, ...result };
      if (heatmap && options.heatmaps) {
        const target = join(options.heatmaps, heatmapName(file, index));
        await writeFileAtomic(target, dataUrlToBytes(heatmap));
        outcome.heatmapFile = target;
      }
    } catch (err) {
      // Every error line names its file (a model error, e.g. NaN outputs, names the member only).
      const message = (err as Error).message;
      outcome = { file, error: err instanceof PocovidError && message.startsWith(`${file}:`) ? message : `${file}: ${message}` };
    }
    outcomes.push(outcome);
    options.onResult?.(outcome);
  }
  return outcomes;
}

const fixed = (v: number | null | undefined, digits = 4): string => (v === null || v === undefined ? '' : v.toFixed(digits));

function csvCell(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function toCsv(outcomes: FileOutcome[], classes: string[]): string {
  const header = ['file', 'kind', 'label', 'confidence', 'entropy', 'ensemble_std', 'mc_dropout_std', ...classes.map((c) => `p_${c}`), 'frames', 'flagged', 'heatmap', 'error'];
  const rows = outcomes.map((o) => {
    if ('error' in o) return [o.file, '', '', '', '', '', '', ...classes.map(() => ''), '', '', '', o.error];
    return [
      o.file, o.kind, o.label ?? '', fixed(o.confidence), fixed(o.uncertainty?.entropy), fixed(o.uncertainty?.ensembleStd), fixed(o.uncertainty?.mcDropoutStd),
      ...classes.map((c) => fixed(o.probabilities?.[c])), String(o.frames?.length ?? 1), o.guard ? String(o.guard.flagged) : '', o.heatmapFile ?? '', '',
    ];
  });
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/** One human-readable line per file. */
export function toLine(outcome: FileOutcome, cwd = process.cwd()): string {
  const name = relative(cwd, outcome.file) || outcome.file;
  if ('error' in outcome) return `${name}  ERROR  ${outcome.error}`;
  if (outcome.label === null) return `${name}  no diagnosis  ${outcome.guard?.reason ?? ''}`;
  const probs = Object.entries(outcome.probabilities ?? {}).map(([c, p]) => `${c}=${p.toFixed(3)}`).join(' ');
  const frames = outcome.frames ? `  ${outcome.frames.length} frames (${outcome.aggregation})` : '';
  return `${name}  ${outcome.label}  confidence=${fixed(outcome.confidence, 3)}  entropy=${fixed(outcome.uncertainty?.entropy, 3)}  ${probs}${frames}`;
}

export function noFilesError(paths: string[]): BadInputError {
  return new BadInputError(paths.join(', '), 'no image or video files found');
}
