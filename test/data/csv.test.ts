import { describe, expect, it } from 'vitest';
import { formatCsv, parseCsv, parseCsvRecords } from '../../src/data/csv.js';
import { parseCropJson } from '../../src/data/crop.js';
import { PatientIndex } from '../../src/data/metadata.js';
import { labelFromFileName } from '../../src/data/label_rules.js';

describe('CSV', () => {
  it('parses quoted fields holding commas, quotes and newlines', () => {
    const text = '\ufeffa,b,c\r\n1,"x, y","he said ""hi"""\n2,"multi\nline",\n';
    expect(parseCsv(text)).toEqual([['a', 'b', 'c'], ['1', 'x, y', 'he said "hi"'], ['2', 'multi\nline', '']]);
  });

  it('round-trips through formatCsv', () => {
    const rows = [['path', 'note'], ['a b.png', 'comma, "quote"\nnewline']];
    expect(parseCsv(formatCsv(rows))).toEqual(rows);
  });

  it('keys records by header', () => {
    const { records } = parseCsvRecords('Filename,Patient ID / Name\nCov-x,"7"\n\n');
    expect(records).toEqual([{ Filename: 'Cov-x', 'Patient ID / Name': '7' }]);
  });
});

describe('dataset_metadata.csv', () => {
  const csv = [
    'Date added,Filename,Comments,Probe,Patient ID / Name',
    '1,Cov-Atlas-Day+1,"pleural, irregular",convex,35',
    '1,Reg-nephropocus,"a\nb",convex,74',
    '1,Reg-nephropocus,,linear,77',
    '1,Pneu-unknown-patient,,convex,',
  ].join('\n');

  it('maps a file to its patient by stem, the probe deciding between duplicates', () => {
    const index = PatientIndex.fromCsvText(csv);
    expect(index.patientOf('Cov-Atlas-Day+1.gif', 'convex')).toBe('35');
    expect(index.patientOf('Reg-nephropocus.gif', 'convex')).toBe('74');
    expect(index.patientOf('Reg-nephropocus.gif', 'linear')).toBe('77');
    expect(index.patientOf('Pneu-unknown-patient.mp4', 'convex')).toBeUndefined();
    expect(index.patientOf('Other.mp4', 'convex')).toBeUndefined();
  });

  it('names the file and line of malformed quoting', () => {
    expect(() => PatientIndex.fromCsvText('Filename,Patient ID / Name\nCov-x,"7\n', 'meta.csv')).toThrow(/meta\.csv: line 2: unterminated quoted field/);
    expect(() => PatientIndex.fromCsvText('Filename,Patient ID / Name\nCov-x,7"\n', 'meta.csv')).toThrow(/meta\.csv: line 2: a quote inside an unquoted field/);
  });

  it('names the file and the missing column', () => {
    expect(() => PatientIndex.fromCsvText('Filename,Label\n', 'meta.csv')).toThrow(/meta\.csv: no "Patient ID \/ Name" column/);
  });
});

describe('crop.json', () => {
  it('reads boxes and frame ranges; empty or negative ranges mean the whole video', () => {
    const problems: string[] = [];
    const crops = parseCropJson(
      JSON.stringify({
        'pocus_videos/convex/a.gif': [[25, 90, 250], [0, 30.0]],
        'pocus_images/convex/b.png': [[100, 250, 500], [0, -9.223372036854776e18]],
        'pocus_videos/convex/bad.mp4': [[1, 2], [0, 1]],
      }),
      'crop.json',
      (p) => problems.push(p),
    );
    expect(crops.get('pocus_videos/convex/a.gif')).toEqual({ top: 25, left: 90, size: 250, frames: [0, 30] });
    expect(crops.get('pocus_images/convex/b.png')).toEqual({ top: 100, left: 250, size: 500 });
    expect(crops.has('pocus_videos/convex/bad.mp4')).toBe(false);
    expect(problems).toEqual([expect.stringContaining('"pocus_videos/convex/bad.mp4" ignored')]);
  });

  it('rejects a file that is not JSON, naming it', () => {
    expect(() => parseCropJson('{', 'my/crop.json')).toThrow(/my\/crop\.json: not valid JSON/);
  });
});

describe('file names', () => {
  it('labels by prefix in any letter case', () => {
    expect(labelFromFileName('Cov-Atlas.gif')).toBe('covid');
    expect(labelFromFileName('pneu-radiopaeda.mp4')).toBe('pneumonia');
    expect(labelFromFileName('Pneu_x.avi')).toBe('pneumonia');
    expect(labelFromFileName('Reg_x.mpeg')).toBe('regular');
    expect(labelFromFileName('Vir_x.mp4')).toBe('viral');
    expect(labelFromFileName('Subpleural.mp4')).toBeUndefined();
  });
});
