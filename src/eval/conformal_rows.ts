// Conformal calibration and coverage from prediction rows (predictions.csv, a fold's
// calibration_predictions.csv): the frame, video (zone) and patient (exam) examples are built the
// way evaluate and predict build them, so a set is calibrated on what it will be used for.
import { PocovidError } from '../errors.js';
import { calibrate, conformalThreshold, summariseSets, type CalibrateOptions, type ConformalCalibration, type ConformalLevel, type CoverageSummary, type LabelledProbabilities } from './conformal.js';
import { aggregatePatients } from './exam.js';
import type { PredictionRow } from './types.js';
import { aggregateVideos } from './video.js';

function labelled(rows: readonly PredictionRow[], classes: readonly string[]): LabelledProbabilities[] {
  return rows.map((r) => {
    const label = classes.indexOf(r.label);
    if (label < 0) throw new PocovidError(`row ${r.path}: label "${r.label}" is not one of the classes ${classes.join(', ')}`);
    return { probabilities: r.probs, label };
  });
}

/** Frames, videos (mean of frames) and exams (src/eval/exam.ts) as labelled probability vectors. */
export function examplesByLevel(rows: readonly PredictionRow[], classes: readonly string[]): Record<ConformalLevel, LabelledProbabilities[]> {
  return {
    frame: labelled(rows, classes),
    video: labelled(aggregateVideos(rows, classes, 'mean'), classes),
    patient: labelled(aggregatePatients(rows, classes).rows, classes),
  };
}

/** Calibration on held-out prediction rows at every level. */
export function calibrateFromRows(rows: readonly PredictionRow[], classes: readonly string[], options: Omit<CalibrateOptions, 'classes'>): ConformalCalibration {
  if (rows.length === 0) throw new PocovidError('no predictions to calibrate on');
  return calibrate(examplesByLevel(rows, classes), { ...options, classes });
}

/** How a calibration's sets behave on labelled rows at each level it has scores for. */
export function coverageByLevel(
  calibration: ConformalCalibration,
  rows: readonly PredictionRow[],
  classes: readonly string[],
  coverage = calibration.coverage,
): Partial<Record<ConformalLevel, CoverageSummary & { calibrationSize: number }>> {
  if (calibration.classes.join(',') !== classes.join(',')) {
    throw new PocovidError(`the calibration is for classes ${calibration.classes.join(', ')}, the predictions have ${classes.join(', ')}`);
  }
  const examples = examplesByLevel(rows, classes);
  const out: Partial<Record<ConformalLevel, CoverageSummary & { calibrationSize: number }>> = {};
  for (const level of Object.keys(examples) as ConformalLevel[]) {
    const cal = calibration.levels[level];
    if (!cal || examples[level].length === 0) continue;
    out[level] = { ...summariseSets(examples[level], conformalThreshold(cal.scores, coverage), calibration), calibrationSize: cal.n };
  }
  return out;
}
