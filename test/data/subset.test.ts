// data subset: some folds of a dataset as a dataset of their own, kept or re-split by patient.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataset } from '../../src/data/dataset.js';
import { subsetDataset } from '../../src/data/subset.js';
import type { ManifestRow } from '../../src/data/types.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

let root: string;
let data: string;
let rows: ManifestRow[];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'pocovid-subset-'));
  data = join(root, 'data');
  rows = await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 2, folds: 3, size: 24 });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('subsetDataset', () => {
  it('re-splits one fold into new folds by patient, every class in each, with the same frames', () => {
    const out = join(root, 'site');
    const { info } = subsetDataset({ data, folds: [2], out, refold: 2, seed: 1 });
    const opened = openDataset(out);
    expect(opened.rows.map((r) => r.path).sort()).toEqual(rows.filter((r) => r.fold === 2).map((r) => r.path).sort());
    expect(info.folds).toBe(2);
    const foldsOf = new Map<string, Set<number>>();
    for (const r of opened.rows) foldsOf.set(r.patient, new Set([...(foldsOf.get(r.patient) ?? []), r.fold]));
    for (const [patient, folds] of foldsOf) expect(folds.size, patient).toBe(1);
    for (const fold of [0, 1]) expect(new Set(opened.rows.filter((r) => r.fold === fold).map((r) => r.label)).size).toBe(3);
    for (const r of opened.rows) expect(readFileSync(join(out, r.path)).equals(readFileSync(join(data, r.path)))).toBe(true);
    expect(info.counts.perFold['0']!.covid! + info.counts.perFold['1']!.covid!).toBe(rows.filter((r) => r.fold === 2 && r.label === 'covid').length);
    expect(info.options).toMatchObject({ subsetFolds: [2], refold: 2, refoldSeed: 1 });
  });

  it('keeps chosen folds renumbered from 0 when not re-split', () => {
    const out = join(root, 'first-two');
    subsetDataset({ data, folds: [2, 0], out });
    const opened = openDataset(out);
    expect(opened.info.folds).toBe(2);
    const was = new Map(rows.map((r) => [r.path, r.fold]));
    for (const r of opened.rows) expect(r.fold).toBe(was.get(r.path) === 0 ? 0 : 1);
    expect(opened.rows).toHaveLength(rows.filter((r) => r.fold !== 1).length);
  });

  it('names the problem with a fold that is not there, too many new folds, or the source as output', () => {
    expect(() => subsetDataset({ data, folds: [3], out: join(root, 'x') })).toThrow(/has folds 0\.\.2; cannot take 3/);
    expect(() => subsetDataset({ data, folds: [0], out: join(root, 'y'), refold: 40 })).toThrow(/cannot split 6 patients into 40 folds/);
    expect(() => subsetDataset({ data, folds: [0], out: data })).toThrow(/is the source dataset itself/);
    expect(existsSync(join(root, 'x'))).toBe(false);
  });
});
