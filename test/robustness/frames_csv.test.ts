// robustness's frames.csv: records written and read back are the same records (every digit of
// every probability, awkward names included), and a damaged file is refused naming the file, the
// line and the problem.
import { describe, expect, it } from 'vitest';
import { formatFramesCsv, parseFramesCsv } from '../../src/robustness/frames_csv.js';
import type { FrameRecord } from '../../src/robustness/stats.js';

const CLASSES = ['covid', 'pneumonia', 'regular'];
const RECORDS: FrameRecord[] = [
  {
    path: 'frames/a, "left".png',
    source: 'a, "left".mp4',
    patient: 'P 1',
    fold: 2,
    label: 'covid',
    clean: [0.1 + 0.2, 1 / 3, 1 - 0.1 - 0.2 - 1 / 3],
    perturbed: {
      'noise-1': { probs: [0.25, 0.5, 0.25], pixelChange: 0.5878, origin: 'stored' },
      'resize-area': { probs: [1e-9, 0.999999999, 0], pixelChange: 0.47, origin: 'native' },
    },
  },
  { path: 'frames/b.png', source: 'b.png', patient: 'P2', fold: 0, label: 'regular', clean: [0.2, 0.3, 0.5], perturbed: {} },
];

describe('frames.csv', () => {
  it('round-trips records exactly', () => {
    const text = formatFramesCsv(RECORDS, CLASSES);
    expect(text.split('\n')[0]).toBe('path,source,patient,fold,label,view,origin,pixel_change,p_covid,p_pneumonia,p_regular');
    expect(parseFramesCsv(text, 'f.csv')).toEqual({ classes: CLASSES, records: RECORDS });
  });

  it('refuses a damaged file, naming it, the line and the problem', () => {
    const text = formatFramesCsv(RECORDS, CLASSES);
    const lines = text.split('\n');
    const swap = (i: number, line: string): string => lines.map((l, k) => (k === i ? line : l)).join('\n');
    expect(() => parseFramesCsv('a,b\n', 'f.csv')).toThrow(/^f\.csv: not a robustness frames\.csv: its header must start path,source,patient,fold,label,view,origin,pixel_change$/);
    expect(() => parseFramesCsv(lines[0]!.replace(',p_pneumonia,p_regular', '') + '\n', 'f.csv')).toThrow(/^f\.csv: needs a p_<class> column per class/);
    expect(() => parseFramesCsv(swap(2, lines[2]!.replace('0.25,0.5,0.25', '0.25,x,0.25')), 'f.csv')).toThrow(/^f\.csv: line 3: p_pneumonia "x" is not a number$/);
    expect(() => parseFramesCsv([lines[0], lines[2], lines[1]].join('\n'), 'f.csv')).toThrow(/^f\.csv: line 2: frames\/a, "left"\.png: its noise-1 row comes before its clean row$/);
    expect(() => parseFramesCsv([lines[0], lines[1], lines[2], lines[2]].join('\n'), 'f.csv')).toThrow(/^f\.csv: line 4: frames\/a, "left"\.png has a second noise-1 row$/);
    expect(() => parseFramesCsv(swap(2, lines[2]!.replace(',stored,', ',elsewhere,')), 'f.csv')).toThrow(/^f\.csv: line 3: origin "elsewhere" is neither stored nor native$/);
    expect(() => parseFramesCsv(swap(2, lines[2]!.replace(/,0\.25$/, '')), 'f.csv')).toThrow(/^f\.csv: line 3: 10 fields, the header has 11$/);
  });
});
