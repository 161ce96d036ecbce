// manifest.csv ⇄ ManifestRow[]. The manifest decides what every fold trains and tests on, so it is
// read strictly.
import { readFileSync } from 'node:fs';
import { BadInputError } from '../errors.js';
import { formatCsv, parseCsvWithLines } from './csv.js';
import { ALL_CLASSES, type ClassName, type ManifestRow } from './types.js';

export const MANIFEST_COLUMNS = ['path', 'label', 'source', 'patient', 'probe', 'kind', 'frame', 'time', 'fold'] as const;

export function formatManifest(rows: readonly ManifestRow[]): string {
  return formatCsv([
    MANIFEST_COLUMNS,
    ...rows.map((r) => [r.path, r.label, r.source, r.patient, r.probe, r.kind, r.frame, Number(r.time.toFixed(3)), r.fold]),
  ]);
}

const UNSIGNED_INTEGER = /^\d+$/;
const NON_NEGATIVE_NUMBER = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A frame path inside the dataset folder: relative, '/'-separated, never reaching out of it. */
function pathProblem(path: string): string | undefined {
  if (path === '') return 'is empty';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path) || path.includes('\\')) return 'is not a relative path with / separators';
  if (path.split('/').some((part) => part === '..' || part === '' || part === '.')) return 'has an empty, "." or ".." part';
  return undefined;
}

/**
 * Strict: every field of every row is checked (an empty fold is not fold 0), a frame listed twice
 * or in two folds is refused, a file that does not end with a line end is truncated, and every
 * error names the file and the line it is on.
 */
export function parseManifest(text: string, file = 'manifest.csv'): ManifestRow[] {
  const records = parseCsvWithLines(text, file);
  const header = records[0]?.fields;
  if (!header || header.every((f) => f === '')) throw new BadInputError(file, 'is empty: expected a header line and one row per frame');
  const missing = MANIFEST_COLUMNS.filter((c) => !header.includes(c));
  if (missing.length > 0) throw new BadInputError(file, `line ${records[0]!.line}: missing column(s) ${missing.join(', ')}`);
  const repeated = header.filter((c, i) => header.indexOf(c) !== i);
  if (repeated.length > 0) throw new BadInputError(file, `line ${records[0]!.line}: column(s) ${[...new Set(repeated)].join(', ')} appear twice`);
  if (!/\n$/.test(text)) {
    throw new BadInputError(file, `line ${records.at(-1)!.line}: the file ends in the middle of a line: it is truncated (data build always ends it with a line end)`);
  }
  const col = Object.fromEntries(MANIFEST_COLUMNS.map((c) => [c, header.indexOf(c)])) as Record<(typeof MANIFEST_COLUMNS)[number], number>;
  const byPath = new Map<string, number>();
  const byFrame = new Map<string, { line: number; fold: number }>();
  return records.slice(1).map(({ fields, line }) => {
    const bad = (problem: string): never => {
      throw new BadInputError(file, `line ${line}: ${problem}`);
    };
    if (fields.length !== header.length) bad(`${fields.length} fields, but the header has ${header.length}: the line is cut or has a stray comma`);
    const get = (c: (typeof MANIFEST_COLUMNS)[number]): string => fields[col[c]]!;
    const path = get('path');
    const pathIssue = pathProblem(path);
    if (pathIssue) bad(`path "${path}" ${pathIssue}`);
    const label = get('label') as ClassName;
    if (!ALL_CLASSES.includes(label)) bad(`unknown label "${get('label')}" (valid: ${ALL_CLASSES.join(', ')})`);
    for (const c of ['source', 'patient'] as const) if (get(c).trim() === '') bad(`${c} is empty`);
    const probe = get('probe');
    // 'unknown': sources from class folders (layouts.ts), which name no probe.
    if (probe !== 'convex' && probe !== 'linear' && probe !== 'unknown') bad(`unknown probe "${probe}" (valid: convex, linear, unknown)`);
    const kind = get('kind');
    if (kind !== 'video' && kind !== 'image') bad(`unknown kind "${kind}" (valid: video, image)`);
    for (const c of ['frame', 'fold'] as const) if (!UNSIGNED_INTEGER.test(get(c))) bad(`${c} "${get(c)}" is not a whole number ≥ 0`);
    if (!NON_NEGATIVE_NUMBER.test(get('time')) || !Number.isFinite(Number(get('time')))) bad(`time "${get('time')}" is not a number of seconds ≥ 0`);
    const frame = Number(get('frame'));
    const fold = Number(get('fold'));
    const earlier = byPath.get(path);
    if (earlier !== undefined) bad(`frame ${path} is already listed on line ${earlier}`);
    byPath.set(path, line);
    const key = `${get('source')}\u0000${frame}`;
    const same = byFrame.get(key);
    if (same) bad(`frame ${frame} of ${get('source')} is already listed on line ${same.line}${same.fold !== fold ? ` in fold ${same.fold} (here fold ${fold})` : ''}`);
    byFrame.set(key, { line, fold });
    return { path, label, source: get('source'), patient: get('patient'), probe: probe as ManifestRow['probe'], kind: kind as ManifestRow['kind'], frame, time: Number(get('time')), fold };
  });
}

export function readManifest(path: string): ManifestRow[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BadInputError(path, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  return parseManifest(text, path);
}
