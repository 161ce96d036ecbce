// Conformal calibrations read from and made for run folders: a fold's from its
// calibration_predictions.csv (written by the trainer), a cross-validation's out-of-fold one from
// its pooled predictions.csv (for the fold ensemble and for a model refit on all the data).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readPredictionsCsv } from './csv.js';
import { calibrateFromRows } from './conformal_rows.js';
import type { ConformalCalibration, ConformalMethod } from './conformal.js';

/**
 * The predictions a fold's prediction sets were calibrated on, next to its predictions.csv: its
 * validation split, or for a logistic head the out-of-fold predictions of its penalty search.
 */
export const CALIBRATION_PREDICTIONS_FILE = 'calibration_predictions.csv';

export interface ConformalChoice {
  method?: ConformalMethod;
  coverage?: number;
  lambda?: number;
  kReg?: number;
}

/**
 * The out-of-fold calibration of a cross-validation: every frame's prediction by the fold model
 * that never saw it (`predictions.csv`, pooled over folds). A model refit on all the data (or the
 * fold ensemble) has no held-out data of its own; these scores stand in for its own, which assumes
 * it is about as confident as the fold models were. README says so wherever such a model is used.
 */
export function calibrateFromPredictionsCsv(predictionsCsv: string, choice: ConformalChoice = {}): ConformalCalibration {
  const table = readPredictionsCsv(predictionsCsv);
  return calibrateFromRows(table.rows, table.classes, { ...choice, calibratedOn: 'out-of-fold' });
}

/** The out-of-fold calibration of a run folder, or undefined when it holds no pooled predictions.csv. */
export function runOutOfFoldConformal(run: string, choice: ConformalChoice = {}): ConformalCalibration | undefined {
  const file = join(run, 'predictions.csv');
  return existsSync(file) ? calibrateFromPredictionsCsv(file, choice) : undefined;
}
