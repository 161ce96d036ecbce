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
 * its decision is the argmax of that mean ("mean"), or the class most frames predicted ("vote"),
 * a tie in votes going to the tied class with the highest mean probability.
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
    let decision = argmax(probs);
    if (mode === 'vote') {
      const votes = new Array<number>(classes.length).fill(0);
      for (const f of frames) {
        const k = classes.indexOf(f.predicted);
        if (k < 0) throw new PocovidError(`frame ${f.path}: predicted class "${f.predicted}" is not one of ${classes.join(', ')}`);
        votes[k]! += 1;
      }
      const most = Math.max(...votes);
      decision = argmax(probs.map((p, k) => (votes[k] === most ? p : Number.NEGATIVE_INFINITY)));
    }
    result.push({ path: source, source, patient: first.patient, fold: first.fold, label: first.label, predicted: classes[decision]!, probs });
  }
  return result;
}
