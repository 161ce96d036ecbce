// Evaluation: metrics, video-level aggregation, task reductions, reports.
export type * from './types.js';
export { VIDEO_AGGREGATIONS, BINARY_TASKS } from './types.js';
export { confusionMatrix, metricsFromConfusion, argmax, safeDivide } from './metrics.js';
export { rocCurve, prCurve, computeCurves, trapezoidArea } from './curves.js';
export { readPredictionsCsv, writePredictionsCsv, parsePredictionsCsv, formatPredictionsCsv, PREDICTION_COLUMNS, type PredictionsTable } from './csv.js';
export { aggregateVideos, groupBySource } from './video.js';
export { restrictClasses, healthyVsDisease, applyBinaryTask, HEALTHY_CLASS, type TaskTable } from './tasks.js';
export { meanStd, summarizeFolds } from './folds.js';
export { evaluatePredictions, computeMetrics, type Evaluation, type EvaluationCurves } from './evaluate.js';
export { formatReportMarkdown, type MarkdownOptions } from './markdown.js';
export { writeReport, evaluateRun, findHistories, type WriteReportOptions, type WrittenReport, type EvaluateRunOptions } from './report.js';
