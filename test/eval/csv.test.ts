import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCsvWithLines } from '../../src/data/csv.js';
import { parsePredictionsCsv, readPredictionsCsv, writePredictionsCsv } from '../../src/eval/csv.js';
import { BadInputError } from '../../src/errors.js';
import type { PredictionRow } from '../../src/eval/types.js';

const dir = mkdtempSync(join(tmpdir(), 'pocovid-csv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('predictions.csv', () => {
  it('round-trips rows with commas, quotes, newlines and full-precision probabilities', () => {
    const classes = ['covid', 'pneumonia', 'regular'];
    const rows: PredictionRow[] = [
      { path: 'frames/Cov, "odd" name.png', source: 'pocus_videos/convex/Cov, x.mp4', patient: 'P "1"', fold: 0, label: 'covid', predicted: 'regular', probs: [0.1 + 0.2, 1 / 3, 1 - (0.1 + 0.2) - 1 / 3] },
      { path: 'frames/two\nlines.png', source: ' padded ', patient: '', fold: 4, label: 'regular', predicted: 'regular', probs: [0, 0, 1] },
    ];
    const file = join(dir, 'predictions.csv');
    writePredictionsCsv(file, rows, classes);
    expect(readFileSync(file, 'utf8').split('\n')[0]).toBe('path,source,patient,fold,label,predicted,p_covid,p_pneumonia,p_regular');
    const back = readPredictionsCsv(file);
    expect(back.classes).toEqual(classes);
    expect(back.rows).toEqual(rows);
  });

  it('takes the class order from the probability columns, whatever the column order', () => {
    const t = parsePredictionsCsv('p_b,path,source,patient,fold,label,predicted,p_a\r\n0.25,x.png,x,p,1,a,a,0.75\r\n', 'mem.csv');
    expect(t.classes).toEqual(['b', 'a']);
    expect(t.rows[0]!.probs).toEqual([0.25, 0.75]);
  });

  it('parses quoted empty fields and a last line without a newline', () => {
    expect(parseCsvWithLines('a,"",c\n"x""y",,z', 'f').map((r) => r.fields)).toEqual([
      ['a', '', 'c'],
      ['x"y', '', 'z'],
    ]);
  });

  it('names the file, line and problem for bad input', () => {
    const header = 'path,source,patient,fold,label,predicted,p_a,p_b\n';
    const cases: [string, RegExp][] = [
      ['path,source,fold,label,predicted,p_a,p_b\n', /bad\.csv: missing column\(s\) patient/],
      ['path,source,patient,fold,label,predicted,p_a\n', /at least two probability columns/],
      [header + 'x,s,p,1,a,c,0.5,0.5\n', /line 2: predicted "c" is not one of the classes a, b/],
      [header + 'x,s,p,one,a,a,0.5,0.5\n', /line 2: fold "one" is not an integer/],
      [header + 'x,s,p,1,a,a,0.5\n', /line 2: 7 fields, header has 8/],
      [header + 'x,s,p,1,a,a,0.5,0.5\nx,s,p,1,a,a,1.5,0.5\n', /line 3: p_a "1.5" is not a probability/],
      [header + 'x,"s,p,1,a,a,0.5,0.5\n', /unterminated quoted field/],
      [header, /no prediction rows/],
    ];
    for (const [text, message] of cases) {
      const f = join(dir, 'bad.csv');
      writeFileSync(f, text);
      expect(() => readPredictionsCsv(f)).toThrow(BadInputError);
      expect(() => readPredictionsCsv(f)).toThrow(message);
    }
    expect(() => readPredictionsCsv(join(dir, 'missing.csv'))).toThrow(/missing\.csv: cannot read predictions/);
  });
});
