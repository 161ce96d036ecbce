// Video-level decisions: the frames of one source (video or image) become one prediction.
import { PocovidError } from '../errors.js';
import { argmax } from './metrics.js';
import type { PredictionRow, VideoAggregation } from './types.js';

/** Frames grouped by `source`, in order of first appearance. */
export function groupBySource(rows: readonly PredictionRow[]): Map<string, PredictionRow[]> {
  const groups = new Map<string, PredictionRow[]>();
  for (const row of rows) {
    const group = groups.get(row.source);
    if (group) group.push(row);
    else groups.set(row.source, [row]);
  }
  return groups;
}

function meanProbs(frames: readonly PredictionRow[]): number[] {
  const sum = new Array<number>(frames[0]!.probs.length).fill(0);
  for (const f of frames) f.probs.forEach((p, k) => (sum[k]! += p));
  return sum.map((s) => s / frames.length);
}

/**
 * One row per source. Its probabilities are the mean of its frames' (used for ROC in both modes);
 * its decision follows `mode` (see VideoAggregation and videoDecision); ties in votes or run
 * lengths go to the tied class with the highest mean probability.
 * `classes` gives the column order of `probs` and is needed to read the frames' `predicted`.
 */
export function aggregateVideos(rows: readonly PredictionRow[], classes: readonly string[], mode: VideoAggregation = 'mean'): PredictionRow[] {
  const result: PredictionRow[] = [];
  for (const [source, frames] of groupBySource(rows)) {
    const first = frames[0]!;
    const mixed = frames.find((f) => f.label !== first.label || f.fold !== first.fold);
    if (mixed) {
      throw new PocovidError(`source "${source}" has frames with different labels or folds (${first.path}: ${first.label}/fold ${first.fold}; ${mixed.path}: ${mixed.label}/fold ${mixed.fold})`);
    }
    const probs = meanProbs(frames);
    const decision = videoDecision(frames, probs, classes, mode);
    result.push({ path: source, source, patient: first.patient, fold: first.fold, label: first.label, predicted: classes[decision]!, probs });
  }
  return result;
}

function classIndex(frame: PredictionRow, classes: readonly string[]): number {
  const k = classes.indexOf(frame.predicted);
  if (k < 0) throw new PocovidError(`frame ${frame.path}: predicted class "${frame.predicted}" is not one of ${classes.join(', ')}`);
  return k;
}

/** Among the classes scoring `best`, the one with the highest mean probability. */
function tieBreak(scores: number[], probs: number[]): number {
  const best = Math.max(...scores);
  return argmax(probs.map((p, k) => (scores[k] === best ? p : Number.NEGATIVE_INFINITY)));
}

/** The video's class under `mode` (see VideoAggregation); frames in time order. */
export function videoDecision(frames: readonly PredictionRow[], meanProbabilities: number[], classes: readonly string[], mode: VideoAggregation): number {
  if (mode === 'mean') return argmax(meanProbabilities);
  if (mode === 'vote') {
    const votes = new Array<number>(classes.length).fill(0);
    for (const f of frames) votes[classIndex(f, classes)]! += 1;
    return tieBreak(votes, meanProbabilities);
  }
  if (mode === 'top3') {
    const confident = [...frames].sort((a, b) => Math.max(...b.probs) - Math.max(...a.probs)).slice(0, 3);
    return argmax(meanProbs(confident));
  }
  const longest = new Array<number>(classes.length).fill(0);
  let run = 0;
  let previous = -1;
  // Frame files are numbered by their position in the video: path order is time order.
  for (const f of [...frames].sort((a, b) => a.path.localeCompare(b.path))) {
    const k = classIndex(f, classes);
    run = k === previous ? run + 1 : 1;
    previous = k;
    longest[k] = Math.max(longest[k]!, run);
  }
  return tieBreak(longest, meanProbabilities);
}
