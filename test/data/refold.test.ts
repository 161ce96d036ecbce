// data refold: the same frames in other folds — groups stay whole, the dataset's own seed gives
// back its own folds, other seeds other folds, and nothing is copied.
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataset } from '../../src/data/dataset.js';
import { foldCounts, foldRows } from '../../src/data/folds.js';
import { formatManifest } from '../../src/data/manifest.js';
import { refoldDataset } from '../../src/data/refold.js';
import type { ManifestRow } from '../../src/data/types.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

let root: string;
let data: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'pocovid-refold-'));
  data = join(root, 'data');
  const rows = await writeTinyDataset(data, { patientsPerClass: 5, framesPerVideo: 2, folds: 3, size: 24 });
  // Folds as data build assigns them, with seed 11, so that refolding with 11 must give them back.
  const folded = foldRows(rows, 3, 11, 'patient');
  writeFileSync(join(data, 'manifest.csv'), formatManifest(folded));
  const info = JSON.parse(readFileSync(join(data, 'dataset.json'), 'utf8'));
  writeFileSync(join(data, 'dataset.json'), JSON.stringify({ ...info, options: { ...info.options, seed: 11, groupBy: 'patient' }, ...foldCounts(folded, info.classes, 3, 'patient') }));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const foldOf = (rows: ManifestRow[]) => new Map(rows.map((r) => [r.path, r.fold]));

describe('data refold', () => {
  it("gives back the dataset's own folds for its own seed", () => {
    const same = refoldDataset(data, join(root, 'seed-11'), 11);
    expect(foldOf(same.rows)).toEqual(foldOf(openDataset(data).rows));
  });

  it('assigns whole patients to other folds for another seed, keeps every frame and links the frames', () => {
    const original = openDataset(data);
    const other = refoldDataset(data, join(root, 'seed-3'), 3);
    expect(other.rows.map((r) => r.path).sort()).toEqual(original.rows.map((r) => r.path).sort());
    const patientFolds = new Map<string, Set<number>>();
    for (const r of other.rows) patientFolds.set(r.patient, (patientFolds.get(r.patient) ?? new Set()).add(r.fold));
    for (const folds of patientFolds.values()) expect(folds.size).toBe(1);
    // Another assignment: some patient moved to another fold (the labels of folds aside).
    const pairs = (rows: ManifestRow[]) => {
      const byPatient = new Map(rows.map((r) => [r.patient, r.fold]));
      const ps = [...byPatient.keys()].sort();
      return ps.flatMap((p, i) => ps.slice(i + 1).map((q) => byPatient.get(p) === byPatient.get(q)));
    };
    expect(pairs(other.rows)).not.toEqual(pairs(original.rows));
    expect(lstatSync(join(root, 'seed-3', 'frames')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(root, 'seed-3', other.rows[0]!.path))).toBe(true);
    expect(other.info.options.seed).toBe(3);
    expect(other.info.options.refoldedFromSeed).toBe(11);
    // The counts in dataset.json are those of the new folds (openDataset checks them against the manifest).
    expect(Object.values(other.info.counts.perFold).reduce((n, c) => n + Object.values(c).reduce((a, b) => a + b, 0), 0)).toBe(original.rows.length);
    // Running it again rewrites the same dataset.
    expect(foldOf(refoldDataset(data, join(root, 'seed-3'), 3).rows)).toEqual(foldOf(other.rows));
  });

  it('refuses to write over its own dataset or over another folder of frames', () => {
    expect(() => refoldDataset(data, data, 2)).toThrow(/another folder/);
    const before = readFileSync(join(data, 'manifest.csv'), 'utf8');
    expect(() => refoldDataset(join(root, 'seed-11'), data, 2)).toThrow(/is not a link/);
    expect(readFileSync(join(data, 'manifest.csv'), 'utf8')).toBe(before);
  });
});
