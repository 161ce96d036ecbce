// The worst errors of an evaluation: the frames the model got wrong most confidently, one per
// source video or image (so one bad clip does not fill the list), most confident first. The
// report shows them with their thumbnails and Grad-CAM (src/explain/error_figures.ts).
import type { PredictionRow } from './types.js';

export interface WorstError {
  path: string;
  source: string;
  fold: number;
  label: string;
  predicted: string;
  /** Probability of the (wrong) predicted class. */
  confidence: number;
  /** Probability given to the true class. */
  trueProbability: number;
  /** Relative paths (from the report) of the frame thumbnail and its Grad-CAM, when they could be made. */
  frameImage?: string;
  gradcamImage?: string;
}

export function worstErrors(rows: readonly PredictionRow[], classes: readonly string[], limit = 8): WorstError[] {
  const bySource = new Map<string, WorstError>();
  for (const r of rows) {
    if (r.label === r.predicted) continue;
    const confidence = r.probs[classes.indexOf(r.predicted)] ?? Number.NaN;
    const current = bySource.get(r.source);
    if (current && current.confidence >= confidence) continue;
    bySource.set(r.source, { path: r.path, source: r.source, fold: r.fold, label: r.label, predicted: r.predicted, confidence, trueProbability: r.probs[classes.indexOf(r.label)] ?? Number.NaN });
  }
  return [...bySource.values()].sort((a, b) => b.confidence - a.confidence || a.path.localeCompare(b.path)).slice(0, Math.max(0, limit));
}
