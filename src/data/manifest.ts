// manifest.csv ⇄ ManifestRow[].
import { readFileSync } from 'node:fs';
import { BadInputError } from '../errors.js';
import { formatCsv, parseCsvRecords } from './csv.js';
import { ALL_CLASSES, type ClassName, type ManifestRow } from './types.js';

export const MANIFEST_COLUMNS = ['path', 'label', 'source', 'patient', 'probe', 'kind', 'frame', 'time', 'fold'] as const;

export function formatManifest(rows: readonly ManifestRow[]): string {
  return formatCsv([
    MANIFEST_COLUMNS,
    ...rows.map((r) => [r.path, r.label, r.source, r.patient, r.probe, r.kind, r.frame, Number(r.time.toFixed(3)), r.fold]),
  ]);
}

export function parseManifest(text: string, file = 'manifest.csv'): ManifestRow[] {
  const { header, records } = parseCsvRecords(text, file);
  const missing = MANIFEST_COLUMNS.filter((c) => !header.includes(c));
  if (missing.length > 0) throw new BadInputError(file, `missing column(s) ${missing.join(', ')}`);
  return records.map((r, i) => {
    const line = i + 2;
    const label = r.label as ClassName;
    if (!ALL_CLASSES.includes(label)) throw new BadInputError(file, `line ${line}: unknown label "${r.label}" (valid: ${ALL_CLASSES.join(', ')})`);
    if (r.probe !== 'convex' && r.probe !== 'linear') throw new BadInputError(file, `line ${line}: unknown probe "${r.probe}"`);
    if (r.kind !== 'video' && r.kind !== 'image') throw new BadInputError(file, `line ${line}: unknown kind "${r.kind}"`);
    const frame = Number(r.frame);
    const time = Number(r.time);
    const fold = Number(r.fold);
    if (!Number.isInteger(frame) || !Number.isFinite(time) || !Number.isInteger(fold) || fold < 0) {
      throw new BadInputError(file, `line ${line}: frame, time and fold must be numbers (got ${r.frame}, ${r.time}, ${r.fold})`);
    }
    return { path: r.path!, label, source: r.source!, patient: r.patient!, probe: r.probe, kind: r.kind, frame, time, fold };
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
