// Stratified, grouped splits: every group (patient or video) lands whole in one bin, and each
// bin's class counts come as close to its share as the groups allow. Greedy: big groups first
// (as in longest-processing-time scheduling), each to the bin whose class counts it improves
// most; ties broken by the seeded RNG so the result depends only on the input and the seed.
import { createRng, type Rng } from '../util/rng.js';

export interface GroupedItem {
  group: string;
  label: string;
  /** How many frames this item stands for (default 1). */
  weight?: number;
}

/** Per group, per class counts. */
export function groupCounts(items: readonly GroupedItem[]): Map<string, Map<string, number>> {
  const groups = new Map<string, Map<string, number>>();
  for (const item of items) {
    const counts = groups.get(item.group) ?? new Map<string, number>();
    counts.set(item.label, (counts.get(item.label) ?? 0) + (item.weight ?? 1));
    groups.set(item.group, counts);
  }
  return groups;
}

/**
 * Assigns each group to one of `shares.length` bins whose target sizes are proportional to
 * `shares` (per class). Returns group → bin index.
 */
export function assignGroups(items: readonly GroupedItem[], shares: readonly number[], rng: Rng): Map<string, number> {
  if (shares.length === 0 || shares.some((s) => !(s >= 0)) || !(shares.reduce((a, b) => a + b, 0) > 0)) {
    throw new Error(`bin shares must be non-negative with a positive sum, got [${shares.join(', ')}]`);
  }
  const groups = groupCounts(items);
  const shareSum = shares.reduce((a, b) => a + b, 0);
  const totals = new Map<string, number>();
  for (const counts of groups.values()) for (const [label, n] of counts) totals.set(label, (totals.get(label) ?? 0) + n);
  const loads = shares.map(() => new Map<string, number>());
  const size = (counts: Map<string, number>) => [...counts.values()].reduce((a, b) => a + b, 0);
  // Sorted by name first so that the shuffle (and so the result) does not depend on input order.
  const order = rng.shuffle([...groups.keys()].sort()).sort((a, b) => size(groups.get(b)!) - size(groups.get(a)!));
  const assignment = new Map<string, number>();
  for (const group of order) {
    const counts = groups.get(group)!;
    let best: number[] = [];
    let bestCost = Infinity;
    for (let bin = 0; bin < shares.length; bin++) {
      if (shares[bin] === 0) continue;
      // Change in Σ_class ((load - target) / total)² if the group joins this bin: each class
      // weighs the same whatever its size, so small classes are balanced too.
      let cost = 0;
      for (const [label, n] of counts) {
        const total = totals.get(label)!;
        const target = (total * shares[bin]!) / shareSum;
        const load = loads[bin]!.get(label) ?? 0;
        cost += (n * (2 * (load - target) + n)) / (total * total);
      }
      if (cost < bestCost - 1e-12) {
        bestCost = cost;
        best = [bin];
      } else if (Math.abs(cost - bestCost) <= 1e-12) best.push(bin);
    }
    const bin = best.length === 1 ? best[0]! : best[rng.int(best.length)]!;
    assignment.set(group, bin);
    for (const [label, n] of counts) loads[bin]!.set(label, (loads[bin]!.get(label) ?? 0) + n);
  }
  return assignment;
}

/** k folds of equal share; group → fold index. Seeded and deterministic. */
export function assignFolds(items: readonly GroupedItem[], folds: number, seed: number): Map<string, number> {
  if (!Number.isInteger(folds) || folds < 2) throw new Error(`folds must be an integer of at least 2, got ${folds}`);
  return assignGroups(items, new Array<number>(folds).fill(1), createRng(seed));
}

/** What keeps frames together in one fold: the patient (honest protocol) or the video/image. */
export type FoldGrouping = 'patient' | 'video';

/** The group of a frame under `groupBy`. */
export function foldGroupOf(row: { patient: string; source: string }, groupBy: FoldGrouping): string {
  return groupBy === 'patient' ? `patient:${row.patient}` : `video:${row.source}`;
}

/**
 * Frames with their folds: grouped by `groupBy`, stratified by label, seeded (assignFolds). The
 * one rule `data build` and `data refold` share. Throws when a fold would stay empty.
 */
export function foldRows<R extends { patient: string; source: string; label: string }>(rows: readonly R[], folds: number, seed: number, groupBy: FoldGrouping): (R & { fold: number })[] {
  const assignment = assignFolds(rows.map((r) => ({ group: foldGroupOf(r, groupBy), label: r.label })), folds, seed);
  const empty = Array.from({ length: folds }, (_, k) => k).filter((k) => ![...assignment.values()].includes(k));
  if (empty.length > 0) throw new Error(`--folds ${folds}: fold(s) ${empty.join(', ')} would get no ${groupBy}; use fewer folds`);
  return rows.map((r) => ({ ...r, fold: assignment.get(foldGroupOf(r, groupBy))! }));
}

/** Frames, sources and groups per class and fold, as dataset.json records them. */
export function foldCounts(rows: readonly { label: string; source: string; patient: string; fold: number }[], classes: readonly string[], folds: number, groupBy: FoldGrouping) {
  const perClass: Record<string, number> = {};
  const perFold: Record<string, Record<string, number>> = {};
  const sourcesPerClass: Record<string, number> = {};
  const sourcesPerFold: Record<string, Record<string, number>> = {};
  const groupsPerFold: Record<string, number> = {};
  const seenSource = new Set<string>();
  const seenGroup = new Set<string>();
  for (let f = 0; f < folds; f++) {
    perFold[f] = Object.fromEntries(classes.map((c) => [c, 0]));
    sourcesPerFold[f] = Object.fromEntries(classes.map((c) => [c, 0]));
    groupsPerFold[f] = 0;
  }
  for (const c of classes) perClass[c] = sourcesPerClass[c] = 0;
  for (const r of rows) {
    perClass[r.label]!++;
    perFold[r.fold]![r.label]!++;
    if (!seenSource.has(r.source)) {
      seenSource.add(r.source);
      sourcesPerClass[r.label]!++;
      sourcesPerFold[r.fold]![r.label]!++;
    }
    const group = foldGroupOf(r, groupBy);
    if (!seenGroup.has(group)) {
      seenGroup.add(group);
      groupsPerFold[r.fold]!++;
    }
  }
  return { counts: { perClass, perFold }, sourceCounts: { perClass: sourcesPerClass, perFold: sourcesPerFold, groupsPerFold } };
}
