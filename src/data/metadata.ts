// dataset_metadata.csv → patient of each source file. The CSV names files by stem in "Filename"
// (e.g. "Cov-Atlas-Day+1" for pocus_videos/convex/Cov-Atlas-Day+1.gif); a stem can occur twice
// with different probes (Reg-nephropocus convex and linear are two patients), so the probe decides.
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { BadInputError } from '../errors.js';
import { parseCsvRecords } from './csv.js';
import type { Probe } from './sources.js';

export const PATIENT_COLUMN = 'Patient ID / Name';
const FILENAME_COLUMN = 'Filename';
const PROBE_COLUMN = 'Probe';

interface Entry {
  patient: string;
  probe: string;
}

export class PatientIndex {
  constructor(private readonly byStem: Map<string, Entry[]>) {}

  static empty(): PatientIndex {
    return new PatientIndex(new Map());
  }

  static fromCsvText(text: string, file = 'dataset_metadata.csv'): PatientIndex {
    const { header, records } = parseCsvRecords(text, file);
    for (const column of [FILENAME_COLUMN, PATIENT_COLUMN]) {
      if (!header.includes(column)) {
        throw new BadInputError(file, `no "${column}" column (columns: ${header.slice(0, 12).join(', ')}…)`);
      }
    }
    const byStem = new Map<string, Entry[]>();
    for (const r of records) {
      const stem = (r[FILENAME_COLUMN] ?? '').trim();
      const patient = (r[PATIENT_COLUMN] ?? '').trim();
      if (!stem || !patient) continue;
      const list = byStem.get(stem) ?? [];
      list.push({ patient, probe: (r[PROBE_COLUMN] ?? '').trim().toLowerCase() });
      byStem.set(stem, list);
    }
    return new PatientIndex(byStem);
  }

  static fromFile(path: string): PatientIndex {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new BadInputError(path, `cannot read (${(err as Error).message})`, { cause: err });
    }
    return PatientIndex.fromCsvText(text, path);
  }

  /** Patient id of a source file, or undefined when the metadata does not name one. */
  patientOf(fileName: string, probe: Probe): string | undefined {
    const name = basename(fileName);
    const candidates = this.byStem.get(name.slice(0, name.length - extname(name).length)) ?? this.byStem.get(name);
    if (!candidates || candidates.length === 0) return undefined;
    const sameProbe = candidates.find((c) => c.probe === probe);
    return (sameProbe ?? candidates[0]!).patient;
  }

  get size(): number {
    return this.byStem.size;
  }
}
