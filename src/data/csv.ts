// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines. dataset_metadata.csv
// has all three, so a split on ',' would shift columns.

/** Parses CSV text into rows of fields (a trailing newline does not make an empty row). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // byte-order mark from spreadsheet exports
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        field += ch;
      }
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Parses CSV with a header row into records keyed by column name. */
export function parseCsvRecords(text: string): { header: string[]; records: Record<string, string>[] } {
  const [header = [], ...body] = parseCsv(text);
  const records = body
    .filter((r) => r.some((f) => f !== ''))
    .map((r) => Object.fromEntries(header.map((name, i) => [name, r[i] ?? ''])));
  return { header, records };
}

function quoteField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Formats rows as CSV text with quoting where needed and a final newline. */
export function formatCsv(rows: readonly (readonly (string | number)[])[]): string {
  return rows.map((r) => r.map((f) => quoteField(String(f))).join(',')).join('\n') + '\n';
}
