// One exam's decision from its zones' decisions (predict --exam): the exam rule of
// src/eval/exam.ts (zones averaged, each once), which evaluate scores and the patient-level
// calibration was made by, and the exam's prediction set at that level. Pure, like the core.
import type { ConformalCalibration } from '../eval/conformal.js';
import { examProbabilities } from '../eval/exam.js';
import { argMax, byClass } from './combine.js';
import type { PredictionResult } from './core.js';
import { predictionSetOf, type PredictionSet } from './prediction_set.js';

export interface ExamDecision {
  /** null when no zone got a diagnosis. */
  label: string | null;
  probabilities: Record<string, number> | null;
  /** At patient level, when the calibration has it. */
  predictionSet?: PredictionSet;
  /** Zones the decision is made from. */
  diagnosedZones: number;
  /** Zones the not-ultrasound guard refused: they take no part, as flagged frames take none in a video. */
  refusedZones: number;
}

/**
 * The exam's decision from its zones' results. Each zone must be decided by the mean of its
 * frames (the default video decision): the exam rule and its calibration average mean
 * probabilities, and a vote's shares of frames are another quantity.
 */
export function decideExam(
  zones: readonly Pick<PredictionResult, 'label' | 'probabilities' | 'aggregation'>[],
  classes: readonly string[],
  conformal?: ConformalCalibration,
): ExamDecision {
  if (zones.some((z) => z.aggregation === 'vote')) throw new Error('the exam rule averages zones decided by their mean probability, not by a vote');
  const diagnosed = zones.filter((z) => z.label !== null && z.probabilities !== null);
  const refusedZones = zones.length - diagnosed.length;
  if (diagnosed.length === 0) return { label: null, probabilities: null, diagnosedZones: 0, refusedZones };
  const probabilities = examProbabilities(diagnosed.map((z) => classes.map((c) => z.probabilities![c]!)));
  const set = conformal ? predictionSetOf(conformal, 'patient', probabilities, classes) : undefined;
  return {
    label: classes[argMax(probabilities)]!,
    probabilities: byClass(classes, probabilities),
    ...(set ? { predictionSet: set } : {}),
    diagnosedZones: diagnosed.length,
    refusedZones,
  };
}
