// From prediction rows to the full report: frame level, video level (both aggregations), per fold.
import { PocovidError } from '../errors.js';
import { computeCurves } from './curves.js';
import { summarizeFolds } from './folds.js';
import { confusionMatrix, metricsFromConfusion } from './metrics.js';
import { aggregateVideos } from './video.js';
import { aggregatePatients } from './exam.js';
import { evaluateConformal } from './conformal_report.js';
import type { ConformalCalibration } from './conformal.js';
import type { ClassMetrics, Curves, EvaluateOptions, Metrics, PatientLevel, PredictionRow, Report, VideoAggregation } from './types.js';
import { VIDEO_AGGREGATIONS } from './types.js';

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

function indexOfClass(classes: readonly string[], name: string, row: PredictionRow, what: string): number {
  const k = classes.indexOf(name);
  if (k < 0) throw new PocovidError(`row ${row.path}: ${what} "${name}" is not one of the classes ${classes.join(', ')}`);
  return k;
}

/** Every metric of one set of predictions, and the curves behind the AUCs. */
export function computeMetrics(rows: readonly PredictionRow[], classes: readonly string[]): { metrics: Metrics; curves: Curves } {
  const trueIdx = rows.map((r) => indexOfClass(classes, r.label, r, 'label'));
  const predIdx = rows.map((r) => indexOfClass(classes, r.predicted, r, 'predicted class'));
  for (const r of rows) {
    if (r.probs.length !== classes.length) throw new PocovidError(`row ${r.path}: ${r.probs.length} probabilities for ${classes.length} classes`);
  }
  const matrix = confusionMatrix(trueIdx, predIdx, classes.length);
  const m = metricsFromConfusion(matrix);
  const curves = computeCurves(rows.map((r) => r.probs), trueIdx, classes);
  const perClass: Record<string, ClassMetrics> = {};
  const auc: Record<string, number | null> = {};
  const averagePrecision: Record<string, number | null> = {};
  classes.forEach((c, k) => {
    perClass[c] = m.perClass[k]!;
    auc[c] = finiteOrNull(curves.roc[c]!.auc);
    averagePrecision[c] = finiteOrNull(curves.pr[c]!.averagePrecision);
  });
  auc.micro = finiteOrNull(curves.roc.micro!.auc);
  auc.macro = finiteOrNull(curves.roc.macro!.auc);
  averagePrecision.micro = finiteOrNull(curves.pr.micro!.averagePrecision);
  const metrics: Metrics = {
    n: m.n,
    classes: [...classes],
    accuracy: m.accuracy,
    balancedAccuracy: m.balancedAccuracy,
    mcc: m.mcc,
    perClass,
    macro: m.macro,
    weighted: m.weighted,
    confusionMatrix: matrix,
    auc,
    averagePrecision,
  };
  return { metrics, curves };
}

function byFold(rows: readonly PredictionRow[]): Map<number, PredictionRow[]> {
  const groups = new Map<number, PredictionRow[]>();
  for (const r of rows) {
    const g = groups.get(r.fold);
    if (g) g.push(r);
    else groups.set(r.fold, [r]);
  }
  return new Map([...groups.entries()].sort((a, b) => a[0] - b[0]));
}

export interface EvaluationCurves {
  frame: Curves;
  video: Curves;
}

export type Evaluation = Report & { curves: EvaluationCurves };

/** Exams by the exam rule, metrics pooled and per fold; undefined when no patient can be scored. */
export function evaluatePatients(rows: readonly PredictionRow[], classes: readonly string[]): PatientLevel | undefined {
  const exams = aggregatePatients(rows, classes);
  if (exams.rows.length === 0) return undefined;
  const folds = [...byFold(exams.rows).values()].map((r) => computeMetrics(r, classes).metrics);
  return {
    metrics: computeMetrics(exams.rows, classes).metrics,
    folds,
    foldSummary: summarizeFolds(folds),
    excluded: { mixedLabels: exams.mixedLabels.length, splitAcrossFolds: exams.splitAcrossFolds.length },
  };
}

export interface EvaluatePredictionsOptions extends EvaluateOptions {
  description?: string;
  /** Each fold's conformal calibration (its model's), and a coverage overriding theirs. */
  conformal?: { calibrations: ReadonlyMap<number, ConformalCalibration>; coverage?: number };
}

/**
 * The whole evaluation of out-of-fold (or test) predictions. `classes` is the column order of
 * `probs`. Folds are evaluated separately and summarised as mean ± sample std.
 */
export function evaluatePredictions(rows: readonly PredictionRow[], classes: readonly string[], options: EvaluatePredictionsOptions = {}): Evaluation {
  if (rows.length === 0) throw new PocovidError('no predictions to evaluate');
  const aggregation: VideoAggregation = options.videoAggregation ?? 'mean';
  const frame = computeMetrics(rows, classes);
  const videoRows = Object.fromEntries(VIDEO_AGGREGATIONS.map((a) => [a, aggregateVideos(rows, classes, a)])) as Record<VideoAggregation, PredictionRow[]>;
  const videoByAggregation = Object.fromEntries(VIDEO_AGGREGATIONS.map((a) => [a, computeMetrics(videoRows[a], classes)])) as Record<VideoAggregation, ReturnType<typeof computeMetrics>>;
  const video = videoByAggregation[aggregation];
  const frameFolds = byFold(rows);
  const videoFolds = byFold(videoRows[aggregation]);
  const folds = [...frameFolds.values()].map((r) => computeMetrics(r, classes).metrics);
  const videoFoldMetrics = [...videoFolds.values()].map((r) => computeMetrics(r, classes).metrics);
  const patient = evaluatePatients(rows, classes);
  const conformal = options.conformal ? evaluateConformal(rows, classes, options.conformal.calibrations, options.conformal.coverage) : undefined;
  return {
    classes: [...classes],
    task: {
      description: options.description ?? classes.join(' vs '),
      videoAggregation: aggregation,
      frames: rows.length,
      videos: videoRows.mean.length,
      folds: [...frameFolds.keys()],
    },
    frame: frame.metrics,
    video: video.metrics,
    folds,
    videoFolds: videoFoldMetrics,
    foldSummary: summarizeFolds(folds),
    videoFoldSummary: summarizeFolds(videoFoldMetrics),
    videoByAggregation: Object.fromEntries(VIDEO_AGGREGATIONS.map((a) => [a, videoByAggregation[a].metrics])) as Record<VideoAggregation, Metrics>,
    ...(patient ? { patient } : {}),
    ...(conformal ? { conformal } : {}),
    curves: { frame: frame.curves, video: video.curves },
  };
}
