// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines. dataset_metadata.csv
// has all three, so a split on ',' would shift columns. The one CSV reader/writer of the project
// (manifest.csv, dataset_metadata.csv, predictions.csv, explain tables).
import { BadInputError } from '../errors.js';

/** One CSV record and the 1-based line it starts on (a quoted newline makes records span lines). */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/**
 * Splits CSV text into records with their line numbers. Blank lines make no record; a leading
 * byte-order mark (spreadsheet exports) is skipped. Malformed quoting throws a BadInputError
 * naming `file` and the line.
 */
export function parseCsvWithLines(text: string, file: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let inQuotes = false;
  let line = 1;
  let recordLine = 1;
  let fieldStarted = false;
  const endRecord = (): void => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '' && !fieldStarted)) records.push({ fields, line: recordLine });
    fields = [];
    field = '';
    fieldStarted = false;
  };
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
      continue;
    }
    if (ch === '"') {
      if (field !== '') throw new BadInputError(file, `line ${line}: a quote inside an unquoted field`);
      inQuotes = true;
      fieldStarted = true;
    } else if (ch === ',') {
      fields.push(field);
      field = '';
      fieldStarted = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else field += ch;
  }
  if (inQuotes) throw new BadInputError(file, `line ${recordLine}: unterminated quoted field`);
  if (field !== '' || fields.length > 0 || fieldStarted) endRecord();
  return records;
}

/** Parses CSV text into rows of fields (blank lines and a trailing newline make no row). */
export function parseCsv(text: string, file = 'CSV text'): string[][] {
  return parseCsvWithLines(text, file).map((r) => r.fields);
}

/** Parses CSV with a header row into records keyed by column name. */
export function parseCsvRecords(text: string, file = 'CSV text'): { header: string[]; records: Record<string, string>[] } {
  const [header = [], ...body] = parseCsv(text, file);
  const records = body
    .filter((r) => r.some((f) => f !== ''))
    .map((r) => Object.fromEntries(header.map((name, i) => [name, r[i] ?? ''])));
  return { header, records };
}

// Padded values are quoted too, so tools that trim unquoted fields keep the spaces.
function quoteField(value: string): string {
  return /[",\r\n]/.test(value) || value !== value.trim() ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Formats rows as CSV text with quoting where needed and a final newline. */
export function formatCsv(rows: readonly (readonly (string | number)[])[]): string {
  return rows.map((r) => r.map((f) => quoteField(String(f))).join(',')).join('\n') + '\n';
}
