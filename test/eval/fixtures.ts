// Small prediction tables built by hand for the evaluation tests.
import type { PredictionRow } from '../../src/eval/types.js';

export function row(source: string, fold: number, label: string, predicted: string, probs: number[], path = `${source}#${Math.round(probs[0]! * 1000)}`): PredictionRow {
  return { path, source, patient: `patient-of-${source}`, fold, label, predicted, probs };
}
