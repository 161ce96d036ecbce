// robustness's frames.csv: every test frame's probabilities, clean and under each perturbation, one
// row per (frame, view). It keeps what the report's figures were counted from, so that they can be
// counted again another way (another video rule, an average over runs:
// scripts/robustness-ensemble.ts) without running the models again. Probabilities are written with
// every digit, so a summary of the records read back equals the report's.
import { formatCsv, parseCsvWithLines } from '../data/csv.js';
import { BadInputError } from '../errors.js';
import type { PixelOrigin } from './perturbations.js';
import type { FrameRecord } from './stats.js';

export const FRAMES_CSV = 'frames.csv';
const CLEAN = 'clean';
const FIXED_COLUMNS = ['path', 'source', 'patient', 'fold', 'label', 'view', 'origin', 'pixel_change'] as const;

export function formatFramesCsv(records: readonly FrameRecord[], classes: readonly string[]): string {
  const rows: (string | number)[][] = [[...FIXED_COLUMNS, ...classes.map((c) => `p_${c}`)]];
  for (const r of records) {
    const base = [r.path, r.source, r.patient, r.fold, r.label];
    rows.push([...base, CLEAN, '', '', ...r.clean]);
    for (const [name, p] of Object.entries(r.perturbed)) rows.push([...base, name, p.origin, p.pixelChange, ...p.probs]);
  }
  return formatCsv(rows);
}

/** frames.csv back into records and its classes; `file` names it in every error. */
export function parseFramesCsv(text: string, file: string): { classes: string[]; records: FrameRecord[] } {
  const [head, ...body] = parseCsvWithLines(text, file);
  const header = head?.fields ?? [];
  if (FIXED_COLUMNS.some((c, i) => header[i] !== c)) throw new BadInputError(file, `not a robustness frames.csv: its header must start ${FIXED_COLUMNS.join(',')}`);
  const probColumns = header.slice(FIXED_COLUMNS.length);
  if (probColumns.length < 2 || probColumns.some((c) => !c.startsWith('p_'))) throw new BadInputError(file, 'needs a p_<class> column per class after pixel_change');
  const classes = probColumns.map((c) => c.slice(2));
  const byPath = new Map<string, FrameRecord>();
  for (const { fields, line } of body) {
    const bad = (what: string): never => {
      throw new BadInputError(file, `line ${line}: ${what}`);
    };
    if (fields.length !== header.length) bad(`${fields.length} fields, the header has ${header.length}`);
    const [path, source, patient, foldText, label, view, origin, pixelText] = fields as [string, string, string, string, string, string, string, string];
    const number = (text: string, what: string): number => (text.trim() !== '' && Number.isFinite(Number(text)) ? Number(text) : bad(`${what} "${text}" is not a number`));
    const fold = number(foldText, 'fold');
    const probs = fields.slice(FIXED_COLUMNS.length).map((p, k) => number(p, `p_${classes[k]}`));
    let record = byPath.get(path);
    if (view === CLEAN) {
      if (record) bad(`${path} has a second clean row`);
      record = { path, source, patient, fold, label, clean: probs, perturbed: {} };
      byPath.set(path, record);
      continue;
    }
    if (!record) bad(`${path}: its ${view} row comes before its clean row`);
    if (origin !== 'stored' && origin !== 'native') bad(`origin "${origin}" is neither stored nor native`);
    if (record!.perturbed[view]) bad(`${path} has a second ${view} row`);
    record!.perturbed[view] = { probs, pixelChange: number(pixelText, 'pixel_change'), origin: origin as PixelOrigin };
  }
  return { classes, records: [...byPath.values()] };
}
