import { describe, expect, it } from 'vitest';
import { splitForFold } from '../../src/data/dataset.js';
import { assignFolds, type GroupedItem } from '../../src/data/folds.js';
import type { ClassName, ManifestRow } from '../../src/data/types.js';
import { createRng } from '../../src/util/rng.js';

const CLASSES: ClassName[] = ['covid', 'pneumonia', 'regular'];

/** Random patients with 1–3 videos of 1–30 frames, one class per patient, a few mixed. */
function syntheticRows(seed: number, patients: number): ManifestRow[] {
  const rng = createRng(seed);
  const rows: ManifestRow[] = [];
  for (let p = 0; p < patients; p++) {
    const videos = 1 + rng.int(3);
    const mainClass = CLASSES[rng.int(3)]!;
    for (let v = 0; v < videos; v++) {
      const label = rng.next() < 0.1 ? CLASSES[rng.int(3)]! : mainClass;
      const frames = 1 + rng.int(30);
      for (let f = 0; f < frames; f++) {
        rows.push({ path: `p${p}v${v}f${f}.png`, label, source: `p${p}v${v}.mp4`, patient: `P${p}`, probe: 'convex', kind: 'video', frame: f, time: f / 3, fold: -1 });
      }
    }
  }
  return rows;
}

function countsByFold(items: GroupedItem[], folds: Map<string, number>, k: number): Record<string, number[]> {
  const counts: Record<string, number[]> = {};
  for (const item of items) {
    counts[item.label] ??= new Array<number>(k).fill(0);
    counts[item.label]![folds.get(item.group)!]! += 1;
  }
  return counts;
}

describe('assignFolds', () => {
  it('keeps every patient in one fold and is deterministic under a seed', () => {
    const rows = syntheticRows(1, 60);
    const items = rows.map((r) => ({ group: r.patient, label: r.label }));
    const a = assignFolds(items, 5, 7);
    const b = assignFolds([...items].reverse(), 5, 7);
    expect([...a.entries()].sort()).toEqual([...b.entries()].sort());
    // Every patient, and nothing else, gets a fold; every fold is one of 0..4 and none is left empty.
    expect([...a.keys()].sort()).toEqual([...new Set(items.map((i) => i.group))].sort());
    for (const fold of a.values()) expect(Number.isInteger(fold) && fold >= 0 && fold < 5, `fold ${fold}`).toBe(true);
    expect([...new Set(a.values())].sort()).toEqual([0, 1, 2, 3, 4]);
    const c = assignFolds(items, 5, 8);
    expect([...c.entries()].sort()).not.toEqual([...a.entries()].sort());
  });

  it('balances single-class groups to within the largest group of each class', () => {
    for (const seed of [0, 1, 2, 3]) {
      const rng = createRng(seed);
      const items: GroupedItem[] = [];
      const largest: Record<string, number> = {};
      for (let g = 0; g < 40; g++) {
        const label = CLASSES[g % 3]!;
        const size = 1 + rng.int(20);
        largest[label] = Math.max(largest[label] ?? 0, size);
        for (let i = 0; i < size; i++) items.push({ group: `g${g}`, label });
      }
      const counts = countsByFold(items, assignFolds(items, 5, seed), 5);
      for (const label of CLASSES) {
        const c = counts[label]!;
        expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(largest[label]!);
      }
    }
  });

  it('splits groups of one item perfectly evenly (difference at most 1)', () => {
    const items: GroupedItem[] = Array.from({ length: 53 }, (_, i) => ({ group: `v${i}`, label: CLASSES[i % 3]! }));
    const counts = countsByFold(items, assignFolds(items, 5, 0), 5);
    for (const label of CLASSES) expect(Math.max(...counts[label]!) - Math.min(...counts[label]!)).toBeLessThanOrEqual(1);
  });

  it('rejects fewer than two folds', () => {
    expect(() => assignFolds([], 1, 0)).toThrow(/at least 2/);
  });
});

describe('splitForFold', () => {
  it('takes validation from the training folds, grouped by patient and roughly the asked share', () => {
    const rows = syntheticRows(2, 80);
    const folds = assignFolds(rows.map((r) => ({ group: r.patient, label: r.label })), 5, 0);
    for (const r of rows) r.fold = folds.get(r.patient)!;
    const split = splitForFold(rows, 2, { validationFraction: 0.2, seed: 3 });
    expect(split.test.every((r) => r.fold === 2)).toBe(true);
    expect([...split.train, ...split.validation].every((r) => r.fold !== 2)).toBe(true);
    expect(split.train.length + split.validation.length + split.test.length).toBe(rows.length);
    const trainPatients = new Set(split.train.map((r) => r.patient));
    expect(split.validation.some((r) => trainPatients.has(r.patient))).toBe(false);
    const share = split.validation.length / (split.train.length + split.validation.length);
    expect(share).toBeGreaterThan(0.12);
    expect(share).toBeLessThan(0.28);
    for (const label of CLASSES) expect(split.validation.some((r) => r.label === label)).toBe(true);
    expect(splitForFold(rows, 2, { validationFraction: 0.2, seed: 3 })).toEqual(split);
    expect(splitForFold(rows, 2, { validationFraction: 0 }).validation).toEqual([]);
    expect(() => splitForFold(rows, 9)).toThrow(/test fold 9 has no rows/);
  });
});
