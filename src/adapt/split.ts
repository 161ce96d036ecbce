// Which of a site's files the adaptation trains on and which it holds back to score before and
// after: whole groups (a file, or a patient folder) are held back, stratified by class, seeded.
// Every class needs a group on each side, or "after" would score a class the head never saw (or
// none of it). Browser-safe.
import { PocovidError } from '../errors.js';
import { createKeyedRng } from '../util/rng.js';

export interface SplitItem {
  group: string;
  label: string;
}

export interface HoldOut {
  /** Positions in the items given. */
  train: number[];
  heldOut: number[];
}

export const DEFAULT_HELD_OUT_FRACTION = 0.3;

/**
 * Holds back round(fraction × groups) groups of each class (at least one, and at least one left to
 * train on). A group whose files carry two labels counts in the class most of its files have.
 */
export function holdOut(items: readonly SplitItem[], fraction = DEFAULT_HELD_OUT_FRACTION, seed = 0): HoldOut {
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`held-out fraction ${fraction}: must be between 0 and 1`);
  const votes = new Map<string, Map<string, number>>();
  for (const item of items) {
    const counts = votes.get(item.group) ?? new Map<string, number>();
    counts.set(item.label, (counts.get(item.label) ?? 0) + 1);
    votes.set(item.group, counts);
  }
  const byClass = new Map<string, string[]>();
  for (const [group, counts] of votes) {
    const label = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
    byClass.set(label, [...(byClass.get(label) ?? []), group]);
  }
  const held = new Set<string>();
  for (const [label, groups] of [...byClass].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (groups.length < 2) {
      throw new PocovidError(`class "${label}" has ${groups.length} file or patient: adapting needs at least 2 of every class given (one to train on, one to hold back)`);
    }
    const shuffled = createKeyedRng(seed, `hold-out:${label}`).shuffle([...groups].sort());
    const count = Math.min(groups.length - 1, Math.max(1, Math.round(fraction * groups.length)));
    for (const group of shuffled.slice(0, count)) held.add(group);
  }
  const out: HoldOut = { train: [], heldOut: [] };
  items.forEach((item, i) => (held.has(item.group) ? out.heldOut : out.train).push(i));
  return out;
}
