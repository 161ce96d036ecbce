// Robustness records of several runs on the same frames (fold seeds of one recipe), averaged into
// the records of their ensemble: each frame's clean and perturbed probabilities the mean of the
// runs'. With fold seeds, every run scored a frame with its one model whose training folds did not
// hold the frame's patient, so the ensemble too never saw the frame (the page's ensemble of one
// fold seed's members has seen every dataset frame through most of them and cannot be measured on
// this data). Pure: no I/O.
import { PocovidError } from '../errors.js';
import type { FrameRecord } from './stats.js';

export interface NamedRecords {
  /** Where the records came from (a folder), for errors. */
  name: string;
  records: readonly FrameRecord[];
}

const mean = (vectors: readonly (readonly number[])[]): number[] => vectors[0]!.map((_, k) => vectors.reduce((a, v) => a + v[k]!, 0) / vectors.length);

/**
 * The ensemble's records, in the first run's order and with its fold numbers (only the counting
 * of flips per fold reads them). Every run must hold the same frames, each with the same source
 * and label and the same perturbations.
 */
export function averageRecords(runs: readonly NamedRecords[]): FrameRecord[] {
  if (runs.length === 0) throw new PocovidError('averageRecords: no runs');
  const [first, ...rest] = runs;
  const byPath = rest.map((run) => ({ run, records: new Map(run.records.map((r) => [r.path, r])) }));
  for (const { run, records } of byPath) {
    if (records.size !== first!.records.length) throw new PocovidError(`${run.name}: ${records.size} frames, ${first!.name} ${first!.records.length}: not the same frames`);
  }
  return first!.records.map((record) => {
    const all = [record];
    for (const { run, records } of byPath) {
      const other = records.get(record.path);
      if (!other) throw new PocovidError(`${run.name}: no frame ${record.path} (${first!.name} has it)`);
      if (other.source !== record.source || other.label !== record.label) throw new PocovidError(`${run.name}: frame ${record.path} has another source or label than in ${first!.name}`);
      const names = (r: FrameRecord): string => Object.keys(r.perturbed).sort().join(', ');
      if (names(other) !== names(record)) throw new PocovidError(`${run.name}: frame ${record.path} has perturbations ${names(other) || 'none'}, ${first!.name} ${names(record) || 'none'}`);
      all.push(other);
    }
    const perturbed: FrameRecord['perturbed'] = {};
    for (const [name, view] of Object.entries(record.perturbed)) perturbed[name] = { ...view, probs: mean(all.map((r) => r.perturbed[name]!.probs)) };
    return { ...record, clean: mean(all.map((r) => r.clean)), perturbed };
  });
}
