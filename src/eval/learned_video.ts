// The learned video decision of a cross-validation run, fold by fold: each fold's attention query
// (src/decision/video_attention.ts) is fitted on its training folds' videos only, from the
// out-of-fold frame probabilities of the logistic head's penalty search (calibration_predictions.csv:
// every training frame predicted by a fit that did not see its patient), then decides that fold's
// test videos. The test fold is never read before its own decision.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fitAttentionPooling, attentionPool, type AttentionFit } from '../decision/video_attention.js';
import { LOGISTIC_FILE } from '../train/logistic_head.js';
import { readJsonFile } from '../util/json_file.js';
import { CALIBRATION_PREDICTIONS_FILE } from './conformal_io.js';
import { readPredictionsCsv } from './csv.js';
import { argmax } from './metrics.js';
import { computeMetrics } from './evaluate.js';
import type { PredictionRow, Report } from './types.js';
import { groupBySource } from './video.js';

export interface LearnedVideoFold {
  fold: number;
  fit: AttentionFit;
}

export interface LearnedVideoDecision {
  rule: 'attention';
  /** One row per test video, its probabilities pooled by its fold's query. */
  videos: PredictionRow[];
  folds: LearnedVideoFold[];
}

/**
 * A fold's training frames as its saved classifier scores them. Runs written before the class
 * offsets joined the calibration data (logistic.json with offsets but without
 * outOfFoldHasClassBias) scored them with another classifier: undefined, the rule is left out.
 */
function foldTrainingFrames(foldDir: string, classes: readonly string[]): PredictionRow[] | undefined {
  const file = join(foldDir, CALIBRATION_PREDICTIONS_FILE);
  if (!existsSync(file)) return undefined;
  const table = readPredictionsCsv(file);
  if (table.classes.join(',') !== classes.join(',')) return undefined;
  const logisticFile = join(foldDir, LOGISTIC_FILE);
  if (!existsSync(logisticFile)) return table.rows;
  const log = readJsonFile<{ classBias?: number[]; outOfFoldHasClassBias?: boolean }>(logisticFile, { what: "the fold's logistic-head fit" });
  const offsets = log.classBias ?? [];
  return log.outOfFoldHasClassBias || offsets.every((b) => b === 0) ? table.rows : undefined;
}

/**
 * The attention rule's test videos and each fold's fit; undefined unless every fold of `rows` has
 * its training frames' out-of-fold predictions (a logistic head's cv run).
 */
export function learnedVideoDecision(runDir: string, rows: readonly PredictionRow[], classes: readonly string[], options: { l2?: number } = {}): LearnedVideoDecision | undefined {
  const folds = [...new Set(rows.map((r) => r.fold))].sort((a, b) => a - b);
  const videos: PredictionRow[] = [];
  const fits: LearnedVideoFold[] = [];
  for (const fold of folds) {
    const training = foldTrainingFrames(join(runDir, `fold-${fold}`), classes);
    if (!training) return undefined;
    const fit = fitAttentionPooling(
      [...groupBySource(training).values()].map((frames) => ({ frames: frames.map((f) => f.probs), label: classes.indexOf(frames[0]!.label) })),
      classes.length,
      { l2: options.l2 },
    );
    fits.push({ fold, fit });
    for (const [source, frames] of groupBySource(rows.filter((r) => r.fold === fold))) {
      const probs = attentionPool(frames.map((f) => f.probs), fit.query);
      const first = frames[0]!;
      videos.push({ path: source, source, patient: first.patient, fold, label: first.label, predicted: classes[argmax(probs)]!, probs });
    }
  }
  return { rule: 'attention', videos, folds: fits };
}

/** The learned rule as evaluate reports it: its video metrics and each fold's fit; undefined as above. */
export function learnedVideoReport(runDir: string, rows: readonly PredictionRow[], classes: readonly string[]): Report['learnedVideo'] {
  const learned = learnedVideoDecision(runDir, rows, classes);
  if (!learned) return undefined;
  return {
    rule: learned.rule,
    metrics: computeMetrics(learned.videos, classes).metrics,
    folds: learned.folds.map(({ fold, fit }) => ({ fold, query: fit.query, trainingVideos: fit.videos, loss: fit.loss, meanRuleLoss: fit.meanRuleLoss, l2: fit.l2 })),
  };
}
