// The exam rule: how the zones a clinician scans on one patient (one video or image each) become
// one decision. Pure, so evaluate, predict --exam and the page apply the same rule.
//
// Rule: every zone weighs the same, whatever its frame count; the exam's probabilities are the
// mean of its zones' probabilities (a zone's own are the mean of its frames'), and the exam's
// class is their arg-max. A zone with a finding is therefore diluted by normal zones: the
// per-zone decisions are always shown beside the exam's, and the exam's conformal set (calibrated
// on exams built by this same rule) says when the exam cannot be decided.
import { PocovidError } from '../errors.js';
import { aggregateVideos } from './video.js';
import type { PredictionRow } from './types.js';

/** Mean of the zones' probability vectors, each zone counted once. */
export function examProbabilities(zones: readonly (readonly number[])[]): number[] {
  if (zones.length === 0) throw new PocovidError('an exam needs at least one zone');
  const width = zones[0]!.length;
  const sum = new Array<number>(width).fill(0);
  for (const zone of zones) {
    if (zone.length !== width) throw new PocovidError(`exam zones have ${width} and ${zone.length} probabilities`);
    zone.forEach((p, k) => (sum[k]! += p));
  }
  return sum.map((s) => s / zones.length);
}

export interface PatientAggregation {
  /** One row per exam: path and source = the patient id, probabilities by the exam rule. */
  rows: PredictionRow[];
  /** Patients left out because their zones carry different labels (no single truth to score). */
  mixedLabels: string[];
  /** Patients whose zones lie in more than one fold (a dataset grouped by video): one exam per fold. */
  splitAcrossFolds: string[];
}

/**
 * Prediction rows (frames) → one row per patient and fold, by the exam rule. The decision is the
 * arg-max of the exam probabilities; `classes` gives their column order.
 */
export function aggregatePatients(rows: readonly PredictionRow[], classes: readonly string[]): PatientAggregation {
  const zones = aggregateVideos(rows, classes, 'mean');
  const byPatient = new Map<string, PredictionRow[]>();
  for (const zone of zones) {
    const group = byPatient.get(zone.patient);
    if (group) group.push(zone);
    else byPatient.set(zone.patient, [zone]);
  }
  const result: PatientAggregation = { rows: [], mixedLabels: [], splitAcrossFolds: [] };
  for (const [patient, patientZones] of byPatient) {
    if (new Set(patientZones.map((z) => z.label)).size > 1) {
      result.mixedLabels.push(patient);
      continue;
    }
    const folds = [...new Set(patientZones.map((z) => z.fold))].sort((a, b) => a - b);
    if (folds.length > 1) result.splitAcrossFolds.push(patient);
    for (const fold of folds) {
      const own = patientZones.filter((z) => z.fold === fold);
      const probs = examProbabilities(own.map((z) => z.probs));
      let best = 0;
      for (let k = 1; k < probs.length; k++) if (probs[k]! > probs[best]!) best = k;
      const id = folds.length > 1 ? `${patient} (fold ${fold})` : patient;
      result.rows.push({ path: id, source: id, patient, fold, label: own[0]!.label, predicted: classes[best]!, probs });
    }
  }
  return result;
}
