// What a finished fold leaves in its folder: the test predictions, the selected model (in the
// format predict/serve/export read) and a summary. Evaluation reports are written from these.
import { join } from 'node:path';
import type { BuiltModel } from '../models/types.js';
import type { ManifestRow } from '../data/types.js';
import { writePredictionsCsv } from '../eval/csv.js';
import type { PredictionRow } from '../eval/types.js';
import { saveModelDir } from '../model_dir/model_dir.js';
import { writeJsonAtomicSync } from '../util/atomic.js';
import { calibrateFromRows } from '../eval/conformal_rows.js';
import { CALIBRATION_PREDICTIONS_FILE } from '../eval/conformal_io.js';
import type { ConformalCalibration } from '../eval/conformal.js';
import type { GuardStats } from '../guard/guard.js';
import type { TrainConfig } from './config.js';

export interface PredictionOut {
  row: ManifestRow;
  label: string;
  predicted: string;
  probabilities: number[];
}

/** What trainFold returns. */
export interface TrainFoldResult {
  out: string;
  config: TrainConfig;
  classes: string[];
  bestEpoch: number;
  bestValBalancedAccuracy: number;
  epochsRun: number;
  stoppedEarly: boolean;
  featureCacheSeconds: number;
  /** Backbone outputs this fold computed, and those it took from earlier folds of the same cv. */
  featureEntries: { computed: number; reused: number };
  trainSeconds: number;
  trainImgPerSec: number;
  testPredictions: PredictionOut[];
}

/** What the prediction sets are calibrated on (see writeFoldOutputs). */
export interface CalibrationPredictions {
  predictions: PredictionOut[];
  calibratedOn: 'validation' | 'out-of-fold';
}

export const PREDICTIONS_FILE = 'predictions.csv';
export const SUMMARY_FILE = 'result.json';
export const MODEL_DIR = 'model';

export function toPredictionRows(predictions: readonly PredictionOut[]): PredictionRow[] {
  return predictions.map((p) => ({
    path: p.row.path,
    source: p.row.source,
    patient: p.row.patient,
    fold: p.row.fold,
    label: p.label,
    predicted: p.predicted,
    probs: p.probabilities,
  }));
}

export async function writeFoldOutputs(
  out: string,
  built: BuiltModel,
  result: TrainFoldResult,
  guard?: GuardStats,
  calibration?: CalibrationPredictions,
): Promise<void> {
  writePredictionsCsv(join(out, PREDICTIONS_FILE), toPredictionRows(result.testPredictions), result.classes);
  // The prediction sets are calibrated on predictions of frames the model never learned from: the
  // validation split (it chose the checkpoint, by balanced accuracy, not by these scores), or for a
  // logistic head, which learns from the validation split too, the penalty search's out-of-fold ones.
  const calibrationRows = toPredictionRows(calibration?.predictions ?? []);
  let conformal: ConformalCalibration | undefined;
  if (calibration && calibrationRows.length > 0) {
    writePredictionsCsv(join(out, CALIBRATION_PREDICTIONS_FILE), calibrationRows, result.classes);
    conformal = calibrateFromRows(calibrationRows, result.classes, { method: result.config.conformal, coverage: result.config.coverage, calibratedOn: calibration.calibratedOn });
  }
  await saveModelDir(join(out, MODEL_DIR), {
    name: built.name,
    classes: result.classes,
    cfg: built.cfg,
    members: [built.model],
    aggregation: 'mean',
    source: { run: out, fold: result.config.fold, bestEpoch: result.bestEpoch, model: result.config.model },
    ...(guard ? { guard } : {}),
    ...(conformal ? { conformal } : {}),
  });
  const { testPredictions: _omit, ...summary } = result;
  writeJsonAtomicSync(join(out, SUMMARY_FILE), summary);
}
