// The manifest decides what every fold trains and tests on: damaged rows must be refused with the
// file and the right line named, never read as something else (an empty fold as fold 0).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataset } from '../../src/data/dataset.js';
import { formatManifest, parseManifest } from '../../src/data/manifest.js';
import type { ManifestRow } from '../../src/data/types.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

const row = (path: string, fold: number, frame = 0, source = `src/${path}.mp4`): ManifestRow => ({
  path,
  label: 'covid',
  source,
  patient: 'p1',
  probe: 'convex',
  kind: 'video',
  frame,
  time: frame / 3,
  fold,
});

const good = formatManifest([row('a.png', 0), row('b.png', 1), row('c.png', 2)]);
const lines = good.split('\n');

describe('parseManifest', () => {
  it('reads what formatManifest writes', () => {
    expect(parseManifest(good, 'm.csv').map((r) => [r.path, r.fold])).toEqual([
      ['a.png', 0],
      ['b.png', 1],
      ['c.png', 2],
    ]);
  });

  it('reads probe "unknown", which class-folder layouts write (they name no probe)', () => {
    const own = formatManifest([{ ...row('a.png', 0), probe: 'unknown' }, row('b.png', 1)]);
    expect(parseManifest(own, 'm.csv').map((r) => r.probe)).toEqual(['unknown', 'convex']);
  });

  it('refuses an empty fold, frame or time instead of reading it as 0', () => {
    expect(() => parseManifest(good.replace(/,1\n/, ',\n'), 'm.csv')).toThrow(/^m\.csv: line 3: fold "" is not a whole number ≥ 0$/);
    const one = formatManifest([row('a.png', 0)]);
    expect(() => parseManifest(one.replace(',0,0,0\n', ',0,,0\n'), 'm.csv')).toThrow(/^m\.csv: line 2: time "" is not a number of seconds ≥ 0$/);
    expect(() => parseManifest(one.replace(',0,0,0\n', ',,0,0\n'), 'm.csv')).toThrow(/^m\.csv: line 2: frame "" is not a whole number ≥ 0$/);
    expect(() => parseManifest(good.replace(',2\n', ',-2\n'), 'm.csv')).toThrow(/line 4: fold "-2"/);
    expect(() => parseManifest(good.replace(',2\n', ',1.5\n'), 'm.csv')).toThrow(/line 4: fold "1\.5"/);
  });

  it('refuses a file cut mid-line, naming the last line', () => {
    expect(() => parseManifest(good.slice(0, -2), 'm.csv')).toThrow(/^m\.csv: line 4: the file ends in the middle of a line: it is truncated/);
    // Cut inside a row: too few fields.
    const cut = `${lines.slice(0, 3).join('\n')}\n${lines[3]!.slice(0, 12)}\n`;
    expect(() => parseManifest(cut, 'm.csv')).toThrow(/line 4: \d fields, but the header has 9/);
  });

  it('refuses the same frame twice or in two folds, naming both lines', () => {
    const twice = formatManifest([row('a.png', 0), row('b.png', 1), row('a.png', 1)]);
    expect(() => parseManifest(twice, 'm.csv')).toThrow(/line 4: frame a\.png is already listed on line 2/);
    const twoFolds = formatManifest([row('a.png', 0, 3, 'v.mp4'), row('b.png', 1), row('a2.png', 2, 3, 'v.mp4')]);
    expect(() => parseManifest(twoFolds, 'm.csv')).toThrow(/line 4: frame 3 of v\.mp4 is already listed on line 2 in fold 0 \(here fold 2\)/);
  });

  it('counts lines as the file has them, blank lines and quoted newlines included', () => {
    const badFold = lines[2]!.replace(/,1$/, ',x');
    expect(() => parseManifest(`${lines[0]}\n\n${lines[1]}\n\n\n${badFold}\n`, 'm.csv')).toThrow(/^m\.csv: line 6: fold "x"/);
    const quoted = formatManifest([{ ...row('a.png', 0), patient: 'two\nlines' }, row('b.png', 9)]).replace(/,9\n$/, ',y\n');
    expect(() => parseManifest(quoted, 'm.csv')).toThrow(/^m\.csv: line 4: fold "y"/);
  });

  it('refuses paths that leave the dataset folder, unknown values and missing or repeated columns', () => {
    expect(() => parseManifest(good.replace('a.png,', '../a.png,'), 'm.csv')).toThrow(/line 2: path "\.\.\/a\.png" has an empty, "\." or "\.\." part/);
    expect(() => parseManifest(good.replace('a.png,', '/etc/a.png,'), 'm.csv')).toThrow(/line 2: path "\/etc\/a\.png" is not a relative path/);
    expect(() => parseManifest(good.replace('a.png,covid', 'a.png,flu'), 'm.csv')).toThrow(/line 2: unknown label "flu"/);
    expect(() => parseManifest(good.replace(',convex,', ',phased,'), 'm.csv')).toThrow(/^m\.csv: line 2: unknown probe "phased" \(valid: convex, linear, unknown\)$/);
    expect(() => parseManifest(good.replace(',p1,convex,video,0,0,0', ',,convex,video,0,0,0'), 'm.csv')).toThrow(/line 2: patient is empty/);
    expect(() => parseManifest(good.replace('fold', 'split'), 'm.csv')).toThrow(/line 1: missing column\(s\) fold/);
    expect(() => parseManifest(good.replace('path,label', 'path,path'), 'm.csv')).toThrow(/missing column\(s\) label|column\(s\) path appear twice/);
    expect(() => parseManifest('', 'm.csv')).toThrow(/m\.csv: is empty/);
  });
});

describe('openDataset', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pocovid-manifest-'));
    await writeTinyDataset(dir, { patientsPerClass: 3, framesPerVideo: 2, folds: 3, size: 16 });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a manifest cut at a line end, which only dataset.json\'s counts reveal', () => {
    expect(openDataset(dir).rows).toHaveLength(18);
    const file = join(dir, 'manifest.csv');
    const text = readFileSync(file, 'utf8');
    try {
      const kept = text.split('\n').slice(0, 12).join('\n') + '\n';
      writeFileSync(file, kept);
      expect(() => openDataset(dir)).toThrow(/manifest\.csv: has 11 frames but .*dataset\.json counts 18 \(fold .*\): one of them is truncated or was edited; run data build again/);
    } finally {
      writeFileSync(file, text);
    }
  });

  it('names dataset.json when it is truncated', () => {
    const file = join(dir, 'dataset.json');
    const text = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, text.slice(0, 40));
      expect(() => openDataset(dir)).toThrow(/dataset\.json: not valid JSON \(.*\): the file is truncated or damaged/);
    } finally {
      writeFileSync(file, text);
    }
  });
});
