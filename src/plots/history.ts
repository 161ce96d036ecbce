// Reads the trainer's per-epoch log, history.jsonl (one JSON object per line).
import { readFileSync } from 'node:fs';
import { BadInputError } from '../errors.js';
import type { HistoryEntry } from './charts.js';

export function readHistoryJsonl(file: string): HistoryEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BadInputError(file, `cannot read training history (${(err as Error).message})`, { cause: err });
  }
  const lines = text.split('\n');
  let lastNonEmpty = lines.length - 1;
  while (lastNonEmpty >= 0 && lines[lastNonEmpty]!.trim() === '') lastNonEmpty--;
  const entries: HistoryEntry[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      // A run killed mid-write can leave a partial last line; a bad line elsewhere is corruption.
      if (i === lastNonEmpty) return;
      throw new BadInputError(file, `line ${i + 1}: not valid JSON`);
    }
    const entry = value as HistoryEntry;
    if (typeof value !== 'object' || value === null || typeof entry.epoch !== 'number') throw new BadInputError(file, `line ${i + 1}: expected an object with a numeric "epoch"`);
    entries.push(entry);
  });
  return entries;
}
