// `pocovid predict` as a library: collect files (folders recursed), classify each, keep going past
// bad files, write optional heatmap PNGs, and format the results as a table, JSON or CSV.
import { basename, extname, join, relative } from 'node:path';
import { formatCsv } from '../data/csv.js';
import { BadInputError, PocovidError } from '../errors.js';
import { sniffFileSync } from '../media/sniff.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { VideoAggregation } from '../decision/combine.js';
import type { PredictionResult } from '../decision/core.js';
import { abstentionNote, setCell } from '../decision/prediction_set.js';
import type { Pipeline } from './pipeline.js';
import { dataUrlToBytes } from './png.js';

export type FileOutcome = ({ file: string; heatmapFile?: string } & Omit<PredictionResult, 'heatmap'>) | { file: string; error: string };

export interface PredictFilesOptions {
  fps?: number;
  maxFrames?: number;
  aggregation?: VideoAggregation;
  /** Folder for Grad-CAM overlay PNGs (one per file). */
  heatmaps?: string;
  /** Called after each file (progress, streaming output). */
  onResult?: (outcome: FileOutcome) => void;
  /** Number of the first file's heatmap PNG (predict --exam numbers them across its exams). */
  firstIndex?: number;
}

function heatmapName(file: string, index: number): string {
  const base = basename(file, extname(file)).replace(/[^A-Za-z0-9._-]/g, '_');
  return `${String(index).padStart(4, '0')}_${base}.png`;
}

/** Classifies every file; a bad file becomes {file, error} and the rest go on. */
export async function predictFiles(pipeline: Pipeline, files: string[], options: PredictFilesOptions = {}): Promise<FileOutcome[]> {
  const outcomes: FileOutcome[] = [];
  for (const [position, file] of files.entries()) {
    const index = (options.firstIndex ?? 0) + position;
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

export const fixed = (v: number | null | undefined, digits = 4): string => (v === null || v === undefined ? '' : v.toFixed(digits));

export function toCsv(outcomes: FileOutcome[], classes: string[]): string {
  // `set`: the prediction set's classes joined by "|" (one class = decided), empty without a calibration.
  const header = ['file', 'kind', 'label', 'confidence', 'entropy', 'ensemble_std', 'mc_dropout_std', ...classes.map((c) => `p_${c}`), 'set', 'frames', 'flagged', 'reason', 'warning', 'heatmap', 'error'];
  const rows = outcomes.map((o) => {
    if ('error' in o) return [o.file, '', '', '', '', '', '', ...classes.map(() => ''), '', '', '', '', '', '', o.error];
    return [
      o.file, o.kind, o.label ?? '', fixed(o.confidence), fixed(o.uncertainty?.entropy), fixed(o.uncertainty?.ensembleStd), fixed(o.uncertainty?.mcDropoutStd),
      ...classes.map((c) => fixed(o.probabilities?.[c])), setCell(o.predictionSet), String(o.frames?.length ?? 1), o.guard ? String(o.guard.flagged) : '',
      // The guard's reason: why there is no diagnosis, or which frames of a video it left out.
      o.guard?.reason ?? '', o.warning ?? '', o.heatmapFile ?? '', '',
    ];
  });
  return formatCsv([header, ...rows]);
}

/** One human-readable line per file; an abstaining prediction set is said next to the label. */
export function toLine(outcome: FileOutcome, cwd = process.cwd()): string {
  const name = relative(cwd, outcome.file) || outcome.file;
  if ('error' in outcome) return `${name}  ERROR  ${outcome.error}`;
  if (outcome.label === null) return `${name}  no diagnosis  ${outcome.guard?.reason ?? ''}`;
  const probs = Object.entries(outcome.probabilities ?? {}).map(([c, p]) => `${c}=${p.toFixed(3)}`).join(' ');
  const frames = outcome.frames ? `  ${outcome.frames.length} frames (${outcome.aggregation})` : '';
  const warning = outcome.warning ? `  [${outcome.warning}]` : '';
  const note = abstentionNote(outcome.predictionSet);
  return `${name}  ${outcome.label}${note ? ` — ${note}` : ''}  confidence=${fixed(outcome.confidence, 3)}  entropy=${fixed(outcome.uncertainty?.entropy, 3)}  ${probs}${frames}${warning}`;
}

/** What happened to the files, in words: diagnosed, refused by the guard, unreadable, skipped. */
export function summaryLine(outcomes: FileOutcome[], skipped: number): string {
  const failed = outcomes.filter((o) => 'error' in o).length;
  const refused = outcomes.filter((o) => !('error' in o) && o.label === null).length;
  const diagnosed = outcomes.length - failed - refused;
  const parts = [`${diagnosed} of ${outcomes.length} file${outcomes.length === 1 ? '' : 's'} diagnosed`];
  if (refused > 0) parts.push(`${refused} refused by the not-ultrasound guard (no diagnosis)`);
  if (failed > 0) parts.push(`${failed} failed (unreadable, or the model gave no usable output: see the errors above)`);
  if (skipped > 0) parts.push(`${skipped} skipped (not an image or video)`);
  return `${parts.join(', ')} (research use only, not a diagnostic device)`;
}

export function noFilesError(paths: string[]): BadInputError {
  return new BadInputError(paths.join(', '), 'no image or video files found');
}
