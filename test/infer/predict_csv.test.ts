// predict's CSV (`--csv`, one row per file) and the exam CSV read back with the project's own CSV
// parser: file names with commas, quotes, a carriage return or padding spaces come back unchanged.
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/data/csv.js';
import { examsToCsv, type ExamOutcome } from '../../src/infer/predict_exams.js';
import { toCsv, type FileOutcome } from '../../src/infer/predict_files.js';

const awkward = ['scan, left.png', 'he said "hi".png', 'cr\rname.png', ' padded .png'];

describe("predict's CSV", () => {
  it('quotes every field that needs it, so each file name reads back as written', () => {
    const outcomes: FileOutcome[] = awkward.map((file) => ({ file, error: `${file}: not an image` }));
    const [header, ...rows] = parseCsv(toCsv(outcomes, ['covid', 'pneumonia', 'regular']));
    expect(header![0]).toBe('file');
    expect(rows.map((r) => r[0])).toEqual(awkward);
    expect(rows.map((r) => r[header!.indexOf('error')])).toEqual(awkward.map((f) => `${f}: not an image`));
    expect(rows.every((r) => r.length === header!.length)).toBe(true);
  });

  it('does the same for the exam CSV', () => {
    const outcomes: ExamOutcome[] = awkward.map((exam) => ({ exam, zones: [], refusedZones: 0, failedZones: 0, label: null, probabilities: null }));
    const [header, ...rows] = parseCsv(examsToCsv(outcomes, ['covid', 'regular']));
    expect(header![0]).toBe('exam');
    expect(rows.map((r) => r[0])).toEqual(awkward);
  });
});
