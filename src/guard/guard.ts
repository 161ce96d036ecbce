// The not-ultrasound guard: a frame whose statistics lie far from those of the ultrasound frames
// a model was trained on gets no diagnosis. The original POCOVID-Net added a fourth
// "uninformative" class for this; a distance to the training distribution needs no extra
// labelled class and also catches kinds of input nobody thought of collecting.
import { FEATURE_NAMES, FEATURE_REASONS, frameFeatures, type FeatureName } from './features.js';

export interface GuardStats {
  kind: 'pocovid-guard';
  version: 1;
  features: readonly string[];
  mean: number[];
  /** Inverse of the (shrunk) covariance, row-major. */
  inverseCovariance: number[];
  /** Per-feature standard deviation (for the reason given to the user). */
  std: number[];
  /** Mahalanobis distance above which a frame is flagged. */
  threshold: number;
  /** How the threshold was chosen (e.g. the 99.5th percentile of training frames × 1.25). */
  thresholdRule: string;
  fittedOn: number;
}

export interface GuardResult {
  flagged: boolean;
  /** Mahalanobis distance to the training frames (larger = less like them). */
  score: number;
  threshold: number;
  reason: string;
}

/** Frames with almost no contrast are blank whatever the fitted statistics say. */
const BLANK_STD = 0.015;

function invert(matrix: number[][]): number[][] {
  const n = matrix.length;
  const a = matrix.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const p = a[col]![col]!;
    if (Math.abs(p) < 1e-12) throw new Error('covariance is singular');
    for (let j = 0; j < 2 * n; j++) a[col]![j]! /= p;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = a[r]![col]!;
      if (f !== 0) for (let j = 0; j < 2 * n; j++) a[r]![j]! -= f * a[col]![j]!;
    }
  }
  return a.map((row) => row.slice(n));
}

function mahalanobis(x: number[], stats: GuardStats): number {
  const n = stats.mean.length;
  const d = x.map((v, i) => v - stats.mean[i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sum += d[i]! * stats.inverseCovariance[i * n + j]! * d[j]!;
  return Math.sqrt(Math.max(sum, 0));
}

export interface FitOptions {
  /** Percentile of the training frames' distances that sets the threshold. */
  percentile?: number;
  /** Margin on that percentile (>1 flags fewer real frames). */
  margin?: number;
  /** Shrinkage of the covariance towards its diagonal; default 2·features/frames (within 0.05–1): few frames, more shrinkage. */
  shrinkage?: number;
}

/** Fits the guard on feature vectors of ultrasound frames (from frameFeatures). */
export function fitGuard(samples: number[][], options: FitOptions = {}): GuardStats {
  const percentile = options.percentile ?? 99.5;
  const margin = options.margin ?? 1.25;
  const n = FEATURE_NAMES.length;
  // A covariance from few frames overfits them (held-out frames of the same kind look far away);
  // shrinking the off-diagonal terms more when there are few frames keeps the distance honest.
  const shrinkage = options.shrinkage ?? Math.min(1, Math.max(0.05, (2 * n) / samples.length));
  if (samples.length < n + 2) throw new Error(`the guard needs at least ${n + 2} frames to fit, got ${samples.length}`);
  const mean = Array.from({ length: n }, (_, j) => samples.reduce((s, x) => s + x[j]!, 0) / samples.length);
  const cov = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => samples.reduce((s, x) => s + (x[i]! - mean[i]!) * (x[j]! - mean[j]!), 0) / (samples.length - 1)),
  );
  const std = cov.map((row, i) => Math.sqrt(row[i]!));
  // Shrink towards the diagonal, with a floor so that a feature constant in training (e.g. no
  // colour at all in synthetic data) still gives a finite, large distance when it changes.
  const floor = 1e-6;
  const shrunk = cov.map((row, i) => row.map((v, j) => (i === j ? Math.max(v, floor) : (1 - shrinkage) * v)));
  const inverse = invert(shrunk);
  const stats: GuardStats = {
    kind: 'pocovid-guard',
    version: 1,
    features: FEATURE_NAMES,
    mean,
    inverseCovariance: inverse.flat(),
    std: std.map((s) => Math.max(s, Math.sqrt(floor))),
    threshold: 0,
    thresholdRule: `${percentile}th percentile of the fitted frames' distances × ${margin}`,
    fittedOn: samples.length,
  };
  const distances = samples.map((x) => mahalanobis(x, stats)).sort((a, b) => a - b);
  const index = Math.min(distances.length - 1, Math.floor((percentile / 100) * distances.length));
  stats.threshold = distances[index]! * margin;
  return stats;
}

/** Scores a feature vector; flagged frames must get no diagnosis. */
export function checkFeatures(features: number[], stats: GuardStats): GuardResult {
  const score = mahalanobis(features, stats);
  const lumaStd = features[FEATURE_NAMES.indexOf('lumaStd')]!;
  if (lumaStd < BLANK_STD) {
    return { flagged: true, score, threshold: stats.threshold, reason: 'blank frame (no contrast)' };
  }
  if (score <= stats.threshold) return { flagged: false, score, threshold: stats.threshold, reason: '' };
  // Name the statistic furthest from the training frames, in words a clinician can act on.
  let worst = 0;
  let worstZ = -1;
  features.forEach((v, i) => {
    const z = Math.abs(v - stats.mean[i]!) / stats.std[i]!;
    if (z > worstZ) {
      worstZ = z;
      worst = i;
    }
  });
  const name = FEATURE_NAMES[worst] as FeatureName;
  // What the guard measures is likeness to this model's training frames, not "ultrasound or
  // not": real ultrasound from another machine or probe can be refused too, and must be told so.
  return {
    flagged: true,
    score,
    threshold: stats.threshold,
    reason: `unlike the ultrasound frames this model was trained on (distance ${score.toFixed(1)} > ${stats.threshold.toFixed(1)}; furthest: ${FEATURE_REASONS[name]})`,
  };
}

export function checkFrame(rgb: ArrayLike<number>, width: number, height: number, stats: GuardStats): GuardResult {
  return checkFeatures(frameFeatures(rgb, width, height), stats);
}

export function isGuardStats(value: unknown): value is GuardStats {
  const v = value as GuardStats | undefined;
  return !!v && v.kind === 'pocovid-guard' && v.version === 1 && Array.isArray(v.mean) && v.mean.length === FEATURE_NAMES.length;
}
