// From clean and perturbed probabilities to the figures of the robustness report: how many frame
// and video labels flip, and how far the top probability moves. Videos are decided exactly as the
// evaluation decides them (src/eval/video.ts). Pure: no I/O, no models.
import { aggregateVideos } from '../eval/video.js';
import type { PredictionRow, VideoAggregation } from '../eval/types.js';
import { argMax } from '../decision/combine.js';
import type { PixelOrigin } from './perturbations.js';

/** One test frame: its truth, its clean probabilities and, per perturbation, what became of it. */
export interface FrameRecord {
  path: string;
  source: string;
  patient: string;
  fold: number;
  label: string;
  clean: number[];
  /** Per perturbation name; absent where the perturbation does not apply or failed for the source. */
  perturbed: Record<string, PerturbedFrame>;
}

export interface PerturbedFrame {
  probs: number[];
  /** Mean |Δ| over the frame's 8-bit values, stored frame against perturbed frame (grey levels). */
  pixelChange: number;
  origin: PixelOrigin;
}

/** Mean, median, 95th percentile and maximum (numpy's linear interpolation for the quantiles). */
export interface Distribution {
  mean: number | null;
  median: number | null;
  p95: number | null;
  max: number | null;
}

export function distribution(values: readonly number[]): Distribution {
  if (values.length === 0) return { mean: null, median: null, p95: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  const quantile = (q: number): number => {
    const at = q * (sorted.length - 1);
    const lo = Math.floor(at);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
  };
  return { mean: sorted.reduce((a, b) => a + b, 0) / sorted.length, median: quantile(0.5), p95: quantile(0.95), max: sorted.at(-1)! };
}

/** |p'(ĉ) − p(ĉ)|, ĉ the clean decision: how far the probability of the class decided moves. */
export function topProbabilityChange(clean: readonly number[], perturbed: readonly number[], decided = argMax(clean)): number {
  return Math.abs(perturbed[decided]! - clean[decided]!);
}

export interface FoldFlips {
  fold: number;
  frames: number;
  frameFlips: number;
  videos: number;
  videoFlips: number;
}

export interface PerturbationSummary {
  name: string;
  description: string;
  frames: number;
  frameFlips: number;
  /** Share of frames whose label changes; null when no frame had the perturbation. */
  frameFlipRate: number | null;
  videos: number;
  videoFlips: number;
  videoFlipRate: number | null;
  meanTopProbChange: number | null;
  medianTopProbChange: number | null;
  p95TopProbChange: number | null;
  maxTopProbChange: number | null;
  /** The same distribution over videos (their mean probabilities). */
  videoTopProbChange: Distribution;
  /** Mean |Δ| per 8-bit value between stored and perturbed frames (grey levels). */
  meanPixelChange: number | null;
  /** How many frames were perturbed from the native source and how many from the stored frame. */
  pixelsFrom: Record<PixelOrigin, number>;
  accuracy: { frame: { clean: number | null; perturbed: number | null }; video: { clean: number | null; perturbed: number | null } };
  perFold: FoldFlips[];
  /** Sources whose video decision changed. */
  flippedVideos: string[];
  /**
   * Videos whose prediction set (their fold's calibration; frame level for a still image) changes;
   * null without calibrations. A set that stays the same is the same answer to a clinician.
   */
  videoSetChanges: number | null;
  /** Of the flipped videos, those whose clean set already held the class they flipped to ("cannot decide" either way); null without calibrations. */
  flippedVideosInSet: number | null;
}

/** A fold's prediction set (class names) for a video's mean probabilities, or a still image's; undefined when the fold has no calibration at that level. */
export type PredictionSetOf = (fold: number, level: 'frame' | 'video', probs: readonly number[]) => readonly string[] | undefined;

const rate = (count: number, of: number): number | null => (of === 0 ? null : count / of);

function toRow(record: FrameRecord, probs: number[], classes: readonly string[]): PredictionRow {
  return { path: record.path, source: record.source, patient: record.patient, fold: record.fold, label: record.label, predicted: classes[argMax(probs)]!, probs };
}

/**
 * How many videos (sources) the evaluation's video rule (mean of the clean frames' probabilities)
 * leaves with their top two classes within `within` of each other: the ones any small change can flip.
 */
export function videosNearBoundary(records: readonly FrameRecord[], classes: readonly string[], within: number): number {
  const videos = aggregateVideos(records.map((r) => toRow(r, r.clean, classes)), classes, 'mean');
  return videos.filter((v) => {
    const [top, second] = [...v.probs].sort((a, b) => b - a);
    return top! - second! < within;
  }).length;
}

const accuracyOf = (rows: readonly PredictionRow[]): number | null => rate(rows.filter((r) => r.predicted === r.label).length, rows.length);

/** The report line of one perturbation over every frame that had it. */
export function summarisePerturbation(
  perturbation: { name: string; description: string },
  records: readonly FrameRecord[],
  classes: readonly string[],
  videoAggregation: VideoAggregation,
  setOf?: PredictionSetOf,
): PerturbationSummary {
  const had = records.filter((r) => r.perturbed[perturbation.name]);
  const clean = had.map((r) => toRow(r, r.clean, classes));
  const perturbed = had.map((r) => toRow(r, r.perturbed[perturbation.name]!.probs, classes));
  const frameFlipped = clean.map((row, i) => row.predicted !== perturbed[i]!.predicted);
  const changes = had.map((r) => topProbabilityChange(r.clean, r.perturbed[perturbation.name]!.probs));

  const cleanVideos = aggregateVideos(clean, classes, videoAggregation);
  const perturbedVideos = aggregateVideos(perturbed, classes, videoAggregation);
  const videoFlipped = cleanVideos.map((v, i) => v.predicted !== perturbedVideos[i]!.predicted);
  const videoChanges = cleanVideos.map((v, i) => topProbabilityChange(v.probs, perturbedVideos[i]!.probs, classes.indexOf(v.predicted)));

  const folds = [...new Set(had.map((r) => r.fold))].sort((a, b) => a - b);
  const perFold = folds.map((fold) => ({
    fold,
    frames: had.filter((r) => r.fold === fold).length,
    frameFlips: had.filter((r, i) => r.fold === fold && frameFlipped[i]).length,
    videos: cleanVideos.filter((v) => v.fold === fold).length,
    videoFlips: cleanVideos.filter((v, i) => v.fold === fold && videoFlipped[i]).length,
  }));
  const frameFlips = frameFlipped.filter(Boolean).length;
  const videoFlips = videoFlipped.filter(Boolean).length;
  const sets = setOf && videoSets(cleanVideos, perturbedVideos, had, setOf);
  const frameDistribution = distribution(changes);
  const pixelChanges = had.map((r) => r.perturbed[perturbation.name]!.pixelChange);
  return {
    name: perturbation.name,
    description: perturbation.description,
    frames: had.length,
    frameFlips,
    frameFlipRate: rate(frameFlips, had.length),
    videos: cleanVideos.length,
    videoFlips,
    videoFlipRate: rate(videoFlips, cleanVideos.length),
    meanTopProbChange: frameDistribution.mean,
    medianTopProbChange: frameDistribution.median,
    p95TopProbChange: frameDistribution.p95,
    maxTopProbChange: frameDistribution.max,
    videoTopProbChange: distribution(videoChanges),
    meanPixelChange: distribution(pixelChanges).mean,
    pixelsFrom: {
      native: had.filter((r) => r.perturbed[perturbation.name]!.origin === 'native').length,
      stored: had.filter((r) => r.perturbed[perturbation.name]!.origin === 'stored').length,
    },
    accuracy: {
      frame: { clean: accuracyOf(clean), perturbed: accuracyOf(perturbed) },
      video: { clean: accuracyOf(cleanVideos), perturbed: accuracyOf(perturbedVideos) },
    },
    perFold,
    flippedVideos: cleanVideos.filter((_, i) => videoFlipped[i]).map((v) => v.source),
    videoSetChanges: sets ? sets.changed : null,
    flippedVideosInSet: sets ? sets.flippedInSet : null,
  };
}

/** How many videos' sets change, and how many flipped videos had the class they flipped to in their clean set; undefined if a fold has no calibration. */
function videoSets(
  clean: readonly PredictionRow[],
  perturbed: readonly PredictionRow[],
  frames: readonly FrameRecord[],
  setOf: PredictionSetOf,
): { changed: number; flippedInSet: number } | undefined {
  const frameCount = new Map<string, number>();
  for (const r of frames) frameCount.set(r.source, (frameCount.get(r.source) ?? 0) + 1);
  let changed = 0;
  let flippedInSet = 0;
  for (let i = 0; i < clean.length; i++) {
    const video = clean[i]!;
    const level = frameCount.get(video.source) === 1 ? 'frame' : 'video';
    const before = setOf(video.fold, level, video.probs);
    const after = setOf(video.fold, level, perturbed[i]!.probs);
    if (!before || !after) return undefined;
    if (before.length !== after.length || before.some((k) => !after.includes(k))) changed++;
    if (video.predicted !== perturbed[i]!.predicted && before.includes(perturbed[i]!.predicted)) flippedInSet++;
  }
  return { changed, flippedInSet };
}

/**
 * Issue 15's targets on the real folds: under ±1 grey level, JPEG 95 and the resize choices, at
 * most 1% of frame labels and no video label flip, and the top probability moves by under 0.01 on
 * average. One place, read by the report, the plot and `bench --robustness`.
 */
export const ROBUSTNESS_TARGETS = {
  perturbations: ['noise-1', 'jpeg-95', 'resize-bilinear', 'resize-area', 'resize-libvips'] as readonly string[],
  maxFrameFlipRate: 0.01,
  maxVideoFlipRate: 0,
  maxMeanTopProbChange: 0.01,
} as const;

export interface TargetCheck {
  met: boolean;
  /** The limits missed, in words. */
  missed: string[];
}

/** Whether a tracked perturbation meets the targets; null for one the targets do not cover. */
export function checkTargets(summary: PerturbationSummary): TargetCheck | null {
  if (!ROBUSTNESS_TARGETS.perturbations.includes(summary.name)) return null;
  const missed: string[] = [];
  if (summary.frameFlipRate !== null && summary.frameFlipRate > ROBUSTNESS_TARGETS.maxFrameFlipRate) missed.push(`frame flips ${pct(summary.frameFlipRate)} > ${pct(ROBUSTNESS_TARGETS.maxFrameFlipRate)}`);
  if (summary.videoFlipRate !== null && summary.videoFlipRate > ROBUSTNESS_TARGETS.maxVideoFlipRate) missed.push(`video flips ${summary.videoFlips} > 0`);
  if (summary.meanTopProbChange !== null && summary.meanTopProbChange >= ROBUSTNESS_TARGETS.maxMeanTopProbChange) {
    missed.push(`mean top-probability change ${summary.meanTopProbChange.toFixed(4)} ≥ ${ROBUSTNESS_TARGETS.maxMeanTopProbChange}`);
  }
  return { met: missed.length === 0, missed };
}

export const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;
