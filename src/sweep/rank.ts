// How a sweep ranks its recipes: by what each fold's own model selection saw, never by a test fold.
//
// Each fold records, in fold-k/result.json, `bestValBalancedAccuracy`: the balanced accuracy of the
// model it kept, measured on frames that fold did not train on and that are not its test fold —
//   * heads trained by epochs: the fold's validation split (patients held out of its training
//     folds) at the epoch it kept;
//   * a logistic head: its training folds held out in turn, at the penalty it chose.
// A recipe's score is the mean of that number over its folds (and fold seeds); the standard
// deviation over folds is shown beside it. Ties go to the smaller spread, then to the name.
// The score is the maximum over the epochs (or penalties) the fold tried, so it is optimistic, the
// more so the more a recipe tries; the test folds' pooled figures stay the honest estimate of the
// recipe finally chosen.
import type { RepeatFigures } from '../eval/repeats.js';

export const RANKING_METRIC =
  "validation balanced accuracy: per fold, the balanced accuracy its own model selection saw (result.json bestValBalancedAccuracy: the validation split at the kept epoch, or for a logistic head the training folds held out in turn at the chosen penalty), averaged over the recipe's folds and fold seeds; the test folds never enter it";

export interface FoldScore {
  /** The cv run folder the fold belongs to (one per fold seed). */
  run: string;
  seed: number;
  fold: number;
  score: number;
  /** What the score was measured on. */
  selection: 'validation split' | 'training folds held out in turn';
}

export interface RecipeOutcome {
  name: string;
  overrides: Record<string, unknown>;
  /** The recipe's folder (a cv run, or repeated cvs with fold seeds). */
  out: string;
  folds: FoldScore[];
  /** The test folds' pooled figures (mean over fold seeds): reported, never used to rank. */
  test?: RepeatFigures;
  /** report.md of the cv (repeats.md with several fold seeds). */
  report?: string;
  wallSeconds?: number;
  /** Why the recipe has no result (it failed, or a fold has no usable score). */
  error?: string;
}

export interface RankedRecipe extends RecipeOutcome {
  /** 1 = best; absent for a recipe without a score. */
  rank?: number;
  score?: number;
  std?: number;
}

function meanStd(values: number[]): [number, number] {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return [mean, Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length)];
}

export function rankRecipes(outcomes: readonly RecipeOutcome[]): RankedRecipe[] {
  const scored: RankedRecipe[] = [];
  const unscored: RankedRecipe[] = [];
  for (const outcome of outcomes) {
    if (outcome.error) {
      unscored.push({ ...outcome });
      continue;
    }
    const bad = outcome.folds.filter((f) => !Number.isFinite(f.score));
    if (!outcome.folds.length || bad.length) {
      const which = bad.map((f) => `fold ${f.fold}${f.seed ? ` (fold seed ${f.seed})` : ''}`).join(', ');
      unscored.push({ ...outcome, error: outcome.folds.length ? `no validation score for ${which}` : 'no fold finished' });
      continue;
    }
    const [score, std] = meanStd(outcome.folds.map((f) => f.score));
    scored.push({ ...outcome, score, std });
  }
  scored.sort((a, b) => b.score! - a.score! || a.std! - b.std! || a.name.localeCompare(b.name));
  scored.forEach((r, i) => (r.rank = i + 1));
  return [...scored, ...unscored];
}
