// `pocovid predict --exam` / `--exam-map` as a library: which files make up each exam (a folder per
// patient, or a CSV mapping files to patients), each zone decided as predict decides a file, then
// the exam's decision by the exam rule (src/decision/exam.ts), and the exams as text, JSON or CSV.
// An exam is named only by what the user gave: the folder's name or the mapping's patient id.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { formatCsv, parseCsvWithLines } from '../data/csv.js';
import { decideExam } from '../decision/exam.js';
import { abstentionNote, setCell, type PredictionSet } from '../decision/prediction_set.js';
import { BadInputError } from '../errors.js';
import { collectInputs } from '../media/inputs.js';
import type { Pipeline } from './pipeline.js';
import { fixed, predictFiles, summaryLine, toLine, type FileOutcome, type PredictFilesOptions } from './predict_files.js';

export interface ExamInput {
  /** The folder's name, or the mapping's patient id. */
  exam: string;
  /** The zones: one image or video each. */
  files: string[];
}

export interface ExamInputs {
  exams: ExamInput[];
  /** Files in the folders given that are not images or videos. */
  skipped: string[];
}

/** `--exam`: every path is a folder holding one exam's zone files (searched recursively), named by the folder. */
export function examsFromFolders(paths: string[]): ExamInputs {
  const exams: ExamInput[] = [];
  const skipped: string[] = [];
  const seen = new Map<string, string>();
  for (const path of paths) {
    if (!existsSync(path) || !statSync(path).isDirectory()) {
      throw new BadInputError(path, 'not a folder: with --exam each path is a folder holding one exam\'s zone files (or map files to patients with --exam-map <csv>)');
    }
    const exam = basename(resolve(path));
    const other = seen.get(exam);
    if (other !== undefined) throw new BadInputError(path, `has the same name as ${other}: each exam is named by its folder, so exam folders need distinct names`);
    seen.set(exam, path);
    const found = collectInputs([path]);
    exams.push({ exam, files: found.files });
    skipped.push(...found.skipped);
  }
  return { exams, skipped };
}

/**
 * `--exam-map <csv>`: a CSV with the columns `file` and `patient` (others are ignored); a file is
 * named relative to the CSV's folder (or absolutely) and may be a folder, whose image and video
 * files then all belong to that patient. Exams come in the order of their first row.
 */
export function examsFromMapping(csvFile: string): ExamInputs {
  if (!existsSync(csvFile)) throw new BadInputError(csvFile, 'no such file (the --exam-map CSV: columns file,patient)');
  const [head, ...rows] = parseCsvWithLines(readFileSync(csvFile, 'utf8'), csvFile);
  const header = (head?.fields ?? []).map((h) => h.trim());
  const missing = ['file', 'patient'].filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw new BadInputError(csvFile, `has no column ${missing.join(' or ')}: an exam mapping needs the columns file,patient (its header: ${header.join(',') || 'empty'})`);
  }
  const fileAt = header.indexOf('file');
  const patientAt = header.indexOf('patient');
  const byPatient = new Map<string, string[]>();
  const listedAt = new Map<string, number>();
  const skipped: string[] = [];
  for (const { fields, line } of rows) {
    if (fields.every((f) => f.trim() === '')) continue;
    const name = (fields[fileAt] ?? '').trim();
    const patient = (fields[patientAt] ?? '').trim();
    if (!name || !patient) throw new BadInputError(csvFile, `line ${line}: every row needs a file and a patient`);
    const path = isAbsolute(name) ? name : join(dirname(csvFile), name);
    if (!existsSync(path)) throw new BadInputError(csvFile, `line ${line}: ${name} does not exist (files are named relative to the CSV's folder)`);
    const found = collectInputs([path]);
    // A zone counts once in its exam, and belongs to one exam (also when a folder row covers a file row).
    const again = found.files.find((f) => listedAt.has(resolve(f)));
    if (again !== undefined) {
      throw new BadInputError(csvFile, `line ${line}: ${again === path ? name : again} is listed already on line ${listedAt.get(resolve(again))}`);
    }
    for (const f of found.files) listedAt.set(resolve(f), line);
    skipped.push(...found.skipped);
    byPatient.set(patient, [...(byPatient.get(patient) ?? []), ...found.files]);
  }
  if (byPatient.size === 0) throw new BadInputError(csvFile, 'maps no file to a patient');
  return { exams: [...byPatient].map(([exam, files]) => ({ exam, files })), skipped };
}

/** One exam: its zones as predict gives them, and the exam's decision (one element of predict --exam --json). */
export interface ExamOutcome {
  exam: string;
  zones: FileOutcome[];
  label: string | null;
  probabilities: Record<string, number> | null;
  predictionSet?: PredictionSet;
  /** Zones refused by the not-ultrasound guard: not part of the exam's decision. */
  refusedZones: number;
  /** Zones that could not be read: not part of it either. */
  failedZones: number;
}

export interface PredictExamsOptions extends Omit<PredictFilesOptions, 'aggregation' | 'onResult' | 'firstIndex'> {
  /** Called after each zone. */
  onZone?: (outcome: FileOutcome) => void;
  /** Called after each exam. */
  onExam?: (outcome: ExamOutcome) => void;
}

/** Decides every zone (a bad file is reported and the rest go on), then each exam by the exam rule. */
export async function predictExams(pipeline: Pipeline, exams: ExamInput[], options: PredictExamsOptions = {}): Promise<ExamOutcome[]> {
  const outcomes: ExamOutcome[] = [];
  let firstIndex = 0;
  for (const { exam, files } of exams) {
    // Zones by their mean probability: the exam rule averages those (src/decision/exam.ts).
    const zones = await predictFiles(pipeline, files, { ...options, aggregation: 'mean', firstIndex, ...(options.onZone ? { onResult: options.onZone } : {}) });
    firstIndex += files.length;
    const read = zones.filter((z): z is Exclude<FileOutcome, { error: string }> => !('error' in z));
    const decision = decideExam(read, pipeline.classes, pipeline.model.meta.conformal);
    const outcome: ExamOutcome = {
      exam,
      zones,
      label: decision.label,
      probabilities: decision.probabilities,
      ...(decision.predictionSet ? { predictionSet: decision.predictionSet } : {}),
      refusedZones: decision.refusedZones,
      failedZones: zones.length - read.length,
    };
    outcomes.push(outcome);
    options.onExam?.(outcome);
  }
  return outcomes;
}

/** The exam's line, then one line per zone (indented), as predict prints files. */
export function examLines(outcome: ExamOutcome, cwd = process.cwd()): string[] {
  const counts = zoneCounts(outcome);
  const zones = outcome.zones.map((z) => `  ${toLine(z, cwd)}`);
  if (outcome.label === null) return [`exam ${outcome.exam}  no diagnosis  ${counts}`, ...zones];
  const probs = Object.entries(outcome.probabilities ?? {}).map(([c, p]) => `${c}=${p.toFixed(3)}`).join(' ');
  const note = abstentionNote(outcome.predictionSet);
  return [`exam ${outcome.exam}  ${outcome.label}${note ? ` — ${note}` : ''}  ${probs}  ${counts}`, ...zones];
}

function zoneCounts(outcome: ExamOutcome): string {
  const n = outcome.zones.length;
  const diagnosed = n - outcome.refusedZones - outcome.failedZones;
  const parts = [`${diagnosed} of ${n} zone${n === 1 ? '' : 's'} diagnosed`];
  if (outcome.refusedZones > 0) parts.push(`${outcome.refusedZones} refused by the guard`);
  if (outcome.failedZones > 0) parts.push(`${outcome.failedZones} failed`);
  return parts.join(', ');
}

/** One row per exam; `set` as in predict's CSV (the classes joined by "|"). */
export function examsToCsv(outcomes: ExamOutcome[], classes: string[]): string {
  const header = ['exam', 'zones', 'diagnosed_zones', 'refused_zones', 'failed_zones', 'label', ...classes.map((c) => `p_${c}`), 'set'];
  const rows = outcomes.map((o) => [
    o.exam, String(o.zones.length), String(o.zones.length - o.refusedZones - o.failedZones), String(o.refusedZones), String(o.failedZones),
    o.label ?? '', ...classes.map((c) => fixed(o.probabilities?.[c])), setCell(o.predictionSet),
  ]);
  return formatCsv([header, ...rows]);
}

/** The exams decided, then the zones as predict's summary counts files. */
export function examSummaryLine(outcomes: ExamOutcome[], skipped: number): string {
  const decided = outcomes.filter((o) => o.label !== null).length;
  return `${decided} of ${outcomes.length} exam${outcomes.length === 1 ? '' : 's'} diagnosed; zones: ${summaryLine(outcomes.flatMap((o) => o.zones), skipped)}`;
}
