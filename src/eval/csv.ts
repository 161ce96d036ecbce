// predictions.csv: `path,source,patient,fold,label,predicted` then one `p_<class>` column per class
// (class order = column order). RFC 4180 quoting, so paths with commas or quotes survive.
import { readFileSync } from 'node:fs';
import { formatCsv, parseCsvWithLines } from '../data/csv.js';
import { BadInputError } from '../errors.js';
import { writeFileAtomicSync } from '../util/atomic.js';
import type { PredictionRow } from './types.js';

export const PREDICTION_COLUMNS = ['path', 'source', 'patient', 'fold', 'label', 'predicted'] as const;
const PROB_PREFIX = 'p_';

export interface PredictionsTable {
  classes: string[];
  rows: PredictionRow[];
}

export function readPredictionsCsv(file: string): PredictionsTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BadInputError(file, `cannot read predictions (${(err as Error).message})`, { cause: err });
  }
  return parsePredictionsCsv(text, file);
}

export function parsePredictionsCsv(text: string, file: string): PredictionsTable {
  const records = parseCsvWithLines(text, file);
  const header = records[0]?.fields;
  if (!header) throw new BadInputError(file, 'empty file; expected a header line');
  const missing = PREDICTION_COLUMNS.filter((c) => !header.includes(c));
  if (missing.length > 0) throw new BadInputError(file, `missing column(s) ${missing.join(', ')}; header is "${header.join(',')}"`);
  const probColumns = header.map((name, i) => ({ name, i })).filter((c) => c.name.startsWith(PROB_PREFIX));
  const classes = probColumns.map((c) => c.name.slice(PROB_PREFIX.length));
  if (classes.length < 2) throw new BadInputError(file, `needs at least two probability columns p_<class>; found ${classes.length}`);
  if (new Set(classes).size !== classes.length) throw new BadInputError(file, `duplicate probability columns in "${header.join(',')}"`);
  const col = Object.fromEntries(PREDICTION_COLUMNS.map((c) => [c, header.indexOf(c)])) as Record<(typeof PREDICTION_COLUMNS)[number], number>;

  const rows: PredictionRow[] = records.slice(1).map(({ fields, line }) => {
    const where = `line ${line}`;
    if (fields.length !== header.length) throw new BadInputError(file, `${where}: ${fields.length} fields, header has ${header.length}`);
    const fold = Number(fields[col.fold]);
    if (!Number.isInteger(fold) || fields[col.fold] === '') throw new BadInputError(file, `${where}: fold "${fields[col.fold]}" is not an integer`);
    const label = fields[col.label]!;
    const predicted = fields[col.predicted]!;
    for (const [what, value] of [['label', label], ['predicted', predicted]] as const) {
      if (!classes.includes(value)) throw new BadInputError(file, `${where}: ${what} "${value}" is not one of the classes ${classes.join(', ')}`);
    }
    const probs = probColumns.map(({ name, i }) => {
      const v = Number(fields[i]);
      if (fields[i]!.trim() === '' || !Number.isFinite(v) || v < 0 || v > 1) throw new BadInputError(file, `${where}: ${name} "${fields[i]}" is not a probability in [0, 1]`);
      return v;
    });
    return { path: fields[col.path]!, source: fields[col.source]!, patient: fields[col.patient]!, fold, label, predicted, probs };
  });
  if (rows.length === 0) throw new BadInputError(file, 'no prediction rows after the header');
  return { classes, rows };
}

export function formatPredictionsCsv(rows: readonly PredictionRow[], classes: readonly string[]): string {
  const header = [...PREDICTION_COLUMNS, ...classes.map((c) => PROB_PREFIX + c)];
  const body = rows.map((r) => {
    if (r.probs.length !== classes.length) throw new Error(`prediction for ${r.path} has ${r.probs.length} probabilities for ${classes.length} classes`);
    // Full precision (shortest round-tripping form) so a re-read gives the same numbers.
    return [r.path, r.source, r.patient, String(r.fold), r.label, r.predicted, ...r.probs.map((p) => String(p))];
  });
  return formatCsv([header, ...body]);
}

/** Writes predictions.csv atomically. */
export function writePredictionsCsv(file: string, rows: readonly PredictionRow[], classes: readonly string[]): void {
  writeFileAtomicSync(file, formatPredictionsCsv(rows, classes));
}
