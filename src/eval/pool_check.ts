// Predictions are checked against the dataset's manifest before they are pooled or evaluated:
// every test frame exactly once, nothing else, with the manifest's label. A predictions.csv cut at
// a line end parses cleanly, and a report over 134 of 186 frames looks like any other report.
import { BadInputError } from '../errors.js';
import type { ManifestRow } from '../data/types.js';
import type { PredictionRow } from './types.js';

function firstFew(paths: string[]): string {
  const shown = paths.slice(0, 3).join(', ');
  return paths.length > 3 ? `${shown}, …` : shown;
}

/**
 * Throws a BadInputError naming `file` unless `rows` (read from it) hold exactly one prediction for
 * each of `expected` (the manifest rows it should cover) with the same fold and label. `what`
 * describes the expected frames ("test frames of fold 2"); `hint` says how to repair.
 */
export function checkPredictionsCover(rows: readonly PredictionRow[], expected: readonly ManifestRow[], file: string, what: string, hint: string): void {
  const wanted = new Map(expected.map((r) => [r.path, r]));
  const seen = new Set<string>();
  const twice: string[] = [];
  const extra: string[] = [];
  const wrong: string[] = [];
  for (const row of rows) {
    if (seen.has(row.path)) twice.push(row.path);
    seen.add(row.path);
    const want = wanted.get(row.path);
    if (!want) extra.push(row.path);
    else if (want.fold !== row.fold || want.label !== row.label) {
      wrong.push(`${row.path} (fold ${row.fold}, label ${row.label}; the manifest says fold ${want.fold}, label ${want.label})`);
    }
  }
  const missing = expected.filter((r) => !seen.has(r.path)).map((r) => r.path);
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`${missing.length} of the ${expected.length} ${what} have no prediction (${firstFew(missing)}): the file is truncated or incomplete`);
  if (twice.length > 0) problems.push(`${twice.length} frame(s) are predicted more than once (${firstFew(twice)})`);
  if (extra.length > 0) problems.push(`${extra.length} prediction(s) are not among the ${what} (${firstFew(extra)}): made from another dataset or split`);
  if (wrong.length > 0) problems.push(`${wrong.length} prediction(s) disagree with the manifest (${firstFew(wrong)}): the dataset changed since`);
  if (problems.length > 0) throw new BadInputError(file, `${problems.join('; ')}; ${hint}`);
}

/** What a run's config.json says about the frames its predictions.csv must cover. */
export interface RunCoverage {
  /** The dataset folder, as the run recorded it. */
  data: string;
  /** The folds whose test frames the predictions cover. */
  folds: number[];
}

/** The dataset and folds of a `cv` (folds: [...]) or `train` (fold: k) run's config.json, if it names them. */
export function runCoverage(config: Record<string, unknown> | undefined): RunCoverage | undefined {
  if (!config || typeof config.data !== 'string' || config.data === '') return undefined;
  const folds = Array.isArray(config.folds) ? config.folds : typeof config.fold === 'number' ? [config.fold] : undefined;
  if (!folds || !folds.every((f): f is number => Number.isInteger(f))) return undefined;
  return { data: config.data, folds };
}
