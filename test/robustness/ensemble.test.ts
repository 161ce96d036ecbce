// Averaging robustness records over runs (fold seeds) into their ensemble's records: the mean of
// each frame's clean and perturbed probabilities, in the first run's order; runs that do not hold
// the same frames, sources, labels and perturbations are refused by name.
import { describe, expect, it } from 'vitest';
import { averageRecords } from '../../src/robustness/ensemble.js';
import type { FrameRecord } from '../../src/robustness/stats.js';

function frame(path: string, source: string, fold: number, clean: number[], noise?: number[]): FrameRecord {
  return { path, source, patient: 'P', fold, label: 'a', clean, perturbed: noise ? { 'noise-1': { probs: noise, pixelChange: 0.5, origin: 'stored' } } : {} };
}

const A = [frame('f1', 'V', 0, [0.6, 0.4], [0.2, 0.8]), frame('f2', 'V', 0, [0.5, 0.5], [0.5, 0.5])];
const B = [frame('f2', 'V', 3, [0.7, 0.3], [0.1, 0.9]), frame('f1', 'V', 2, [0.2, 0.8], [0.4, 0.6])];

describe('averageRecords', () => {
  it("averages each frame's clean and perturbed probabilities, in the first run's order with its folds", () => {
    const out = averageRecords([{ name: 'a', records: A }, { name: 'b', records: B }]);
    expect(out.map((r) => [r.path, r.fold])).toEqual([['f1', 0], ['f2', 0]]);
    expect(out[0]!.clean[0]).toBeCloseTo(0.4, 12);
    expect(out[0]!.perturbed['noise-1']!.probs[1]).toBeCloseTo(0.7, 12);
    expect(out[1]!.clean[0]).toBeCloseTo(0.6, 12);
    expect(out[1]!.perturbed['noise-1']!.probs[0]).toBeCloseTo(0.3, 12);
    expect(out[1]!.perturbed['noise-1']!.pixelChange).toBe(0.5);
    // The inputs are left as they were.
    expect(A[0]!.clean).toEqual([0.6, 0.4]);
  });

  it('refuses runs that do not hold the same frames', () => {
    const a = { name: 'a', records: A };
    expect(() => averageRecords([a, { name: 'b', records: B.slice(0, 1) }])).toThrow('b: 1 frames, a 2: not the same frames');
    expect(() => averageRecords([a, { name: 'b', records: [B[0]!, frame('f3', 'V', 0, [0.5, 0.5], [0.5, 0.5])] }])).toThrow('b: no frame f1 (a has it)');
    expect(() => averageRecords([a, { name: 'b', records: [B[0]!, { ...B[1]!, label: 'b' }] }])).toThrow('b: frame f1 has another source or label than in a');
    expect(() => averageRecords([a, { name: 'b', records: [B[0]!, frame('f1', 'V', 2, [0.2, 0.8])] }])).toThrow('b: frame f1 has perturbations none, a noise-1');
    expect(() => averageRecords([])).toThrow('no runs');
  });
});
