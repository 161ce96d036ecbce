// Shapes shared by the evaluation code: one prediction per frame in, one Metrics block per
// grouping (all frames, videos, a fold) out. report.json is made of these.

/** One row of <run>/predictions.csv: one frame, its truth, its prediction and its class probabilities. */
export interface PredictionRow {
  path: string;
  /** The video or image the frame came from: frames sharing a source form one video. */
  source: string;
  patient: string;
  fold: number;
  label: string;
  predicted: string;
  /** One probability per class, in the report's class order. */
  probs: number[];
}

export interface ClassMetrics {
  precision: number;
  /** Sensitivity. */
  recall: number;
  specificity: number;
  f1: number;
  /** Number of rows whose true label is this class. */
  support: number;
}

export interface AveragedMetrics {
  precision: number;
  recall: number;
  f1: number;
}

/** A curve as parallel arrays, ready to plot. */
export interface RocCurve {
  fpr: number[];
  tpr: number[];
  /** Score threshold at each point (Infinity for the (0,0) start). */
  thresholds: number[];
  auc: number;
}

export interface PrCurve {
  recall: number[];
  precision: number[];
  thresholds: number[];
  /** Average precision: sum over thresholds of (R_n - R_{n-1}) * P_n (no interpolation). */
  averagePrecision: number;
}

export interface Curves {
  /** Per class (one-vs-rest) plus "micro" and, for ROC, "macro". */
  roc: Record<string, RocCurve>;
  pr: Record<string, PrCurve>;
}

/** The metric block of report.json ("M" in the issue). */
export interface Metrics {
  n: number;
  classes: string[];
  accuracy: number;
  balancedAccuracy: number;
  mcc: number;
  perClass: Record<string, ClassMetrics>;
  macro: AveragedMetrics;
  weighted: AveragedMetrics;
  /** rows = true class, columns = predicted class, both in `classes` order. */
  confusionMatrix: number[][];
  /** ROC AUC per class (one-vs-rest), "micro" and "macro"; null where undefined (a class with no positives or no negatives). */
  auc: Record<string, number | null>;
  /** Average precision per class and "micro"; null where the class has no positives. */
  averagePrecision: Record<string, number | null>;
}

/** Mean and sample standard deviation over folds (std is 0 with a single fold). */
export interface MeanStd {
  mean: number;
  std: number;
  /** Folds that contributed (a metric that is null in some fold is averaged over the rest). */
  n: number;
}

export interface FoldSummary {
  accuracy: MeanStd;
  balancedAccuracy: MeanStd;
  mcc: MeanStd;
  perClass: Record<string, Record<keyof ClassMetrics, MeanStd>>;
  macro: Record<keyof AveragedMetrics, MeanStd>;
  auc: Record<string, MeanStd>;
}

/**
 * How a video's frames become its decision. 'mean': the argmax of the mean frame probability;
 * 'vote': the class most frames predict; 'top3': the mean of the 3 most confident frames (a finding
 * seen in a few frames is not averaged away); 'contiguous': the class predicted by the longest run
 * of consecutive frames (DeepBreathe's rule: a finding persists while the probe stays).
 */
export type VideoAggregation = 'mean' | 'vote' | 'top3' | 'contiguous';
export const VIDEO_AGGREGATIONS: readonly VideoAggregation[] = ['mean', 'vote', 'top3', 'contiguous'];

export type BinaryTask = 'healthy-vs-disease';
export const BINARY_TASKS: readonly BinaryTask[] = ['healthy-vs-disease'];

export interface EvaluateOptions {
  /** How a video's frames become one decision (default "mean"). */
  videoAggregation?: VideoAggregation;
}

export interface Report {
  classes: string[];
  /** What was evaluated: task reduction, aggregation, row counts. */
  task: { description: string; videoAggregation: VideoAggregation; frames: number; videos: number; folds: number[] };
  frame: Metrics;
  video: Metrics;
  /** Frame-level metrics of each fold, in `task.folds` order. */
  folds: Metrics[];
  videoFolds: Metrics[];
  foldSummary: FoldSummary | null;
  videoFoldSummary: FoldSummary | null;
  /** Both video decisions side by side (the one in `video` is `task.videoAggregation`). */
  videoByAggregation: Record<VideoAggregation, Metrics>;
  /** Exams: a patient's zones decided by the exam rule (src/eval/exam.ts). */
  patient?: PatientLevel;
  /** Split-conformal prediction sets of each fold's model on its test rows (src/eval/conformal_report.ts). */
  conformal?: ConformalReport;
  /**
   * The learned video decision (attention pooling, src/eval/learned_video.ts), each fold's query
   * fitted on its training folds' videos; only for runs whose folds kept those predictions.
   */
  learnedVideo?: { rule: 'attention'; metrics: Metrics; folds: { fold: number; query: number[]; trainingVideos: number; loss: number; meanRuleLoss: number; l2: number }[] };
}

export interface PatientLevel {
  metrics: Metrics;
  /** Patient-level metrics of each fold, in `task.folds` order (a fold without exams is left out). */
  folds: Metrics[];
  foldSummary: FoldSummary | null;
  /** Patients not scored (zones with different labels), and patients cut into one exam per fold. */
  excluded: { mixedLabels: number; splitAcrossFolds: number };
}

/** How prediction sets behaved on labelled examples (see src/eval/conformal.ts summariseSets). */
export interface SetSummary {
  n: number;
  coverage: number;
  meanSetSize: number;
  /** Examples per set size (index = size). */
  setSizes: number[];
  singletonRate: number;
  singletonAccuracy: number;
}

export interface FoldSetSummary extends SetSummary {
  fold: number;
  /** The fold's calibration examples at this level and the threshold they gave (null = infinite: every class). */
  calibrationSize: number;
  threshold: number | null;
}

export interface ConformalReport {
  /** The coverage asked for (a fold's own stored coverage when evaluate was not given one). */
  coverage: number;
  method: string;
  calibratedOn: string;
  levels: Partial<Record<'frame' | 'video' | 'patient', { pooled: SetSummary; folds: FoldSetSummary[] }>>;
  /** Folds whose model folder holds no calibration (their rows are not in the figures). */
  foldsWithoutCalibration: number[];
}
