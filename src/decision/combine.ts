// Combining probabilities: members → frame, frames → video, and the uncertainty figures.
// Pure TypeScript (no TF.js, no Node) so the page reports exactly what the CLI and server report.

export type VideoAggregation = 'mean' | 'vote';

/** Element-wise mean of probability vectors. */
export function meanVector(vectors: ArrayLike<number>[]): number[] {
  if (vectors.length === 0) throw new Error('meanVector: no vectors');
  const length = vectors[0]!.length;
  const out = new Array<number>(length).fill(0);
  for (const v of vectors) for (let i = 0; i < length; i++) out[i]! += v[i]! / vectors.length;
  return out;
}

export function argMax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Predictive entropy of a probability vector divided by log(K): 0 = certain, 1 = uniform. */
export function normalisedEntropy(p: ArrayLike<number>): number {
  if (p.length < 2) return 0;
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i]! > 0) h -= p[i]! * Math.log(p[i]!);
  return Math.min(1, Math.max(0, h / Math.log(p.length)));
}

/** Mean over classes of the standard deviation across samples (members or MC passes). */
export function meanClassStd(samples: ArrayLike<number>[]): number {
  if (samples.length < 2) return 0;
  const mean = meanVector(samples);
  let total = 0;
  for (let c = 0; c < mean.length; c++) {
    let ss = 0;
    for (const s of samples) ss += (s[c]! - mean[c]!) ** 2;
    total += Math.sqrt(ss / samples.length);
  }
  return total / mean.length;
}

/**
 * What "uncertainty" means everywhere (CLI, API, page):
 * - entropy: predictive entropy of the final probabilities, normalised to [0,1] by log(#classes);
 * - ensembleStd: mean over classes of the std of the members' probabilities (null for one member);
 * - mcDropoutStd: mean over classes of the std over Monte-Carlo dropout passes, averaged over members
 *   (null unless MC dropout was asked for and the model has Dropout layers).
 * For a video each figure is averaged over the frames used.
 */
export interface Uncertainty {
  entropy: number;
  ensembleStd: number | null;
  mcDropoutStd: number | null;
}

export interface FrameScores {
  /** Mean over ensemble members. */
  probabilities: number[];
  ensembleStd: number | null;
  mcDropoutStd: number | null;
}

export interface Decision {
  classIndex: number;
  /** mean: mean frame probabilities; vote: share of frames voting for each class. */
  probabilities: number[];
  /** Probability (or vote share) of the chosen class. */
  confidence: number;
  uncertainty: Uncertainty;
}

function meanOrNull(values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : present.reduce((a, b) => a + b, 0) / present.length;
}

/**
 * Decides from one or more frames. mean: class of the mean probability. vote: majority of the
 * frames' classes, ties broken by the mean probability.
 */
export function decide(frames: FrameScores[], aggregation: VideoAggregation = 'mean'): Decision {
  if (frames.length === 0) throw new Error('decide: no frames');
  const mean = meanVector(frames.map((f) => f.probabilities));
  let probabilities = mean;
  let classIndex = argMax(mean);
  if (aggregation === 'vote' && frames.length > 1) {
    const votes = new Array<number>(mean.length).fill(0);
    for (const f of frames) votes[argMax(f.probabilities)]! += 1 / frames.length;
    const top = Math.max(...votes);
    classIndex = argMax(mean.map((p, i) => (votes[i] === top ? p + 1 : p)));
    probabilities = votes;
  }
  return {
    classIndex,
    probabilities,
    confidence: probabilities[classIndex]!,
    uncertainty: {
      entropy: normalisedEntropy(mean),
      ensembleStd: meanOrNull(frames.map((f) => f.ensembleStd)),
      mcDropoutStd: meanOrNull(frames.map((f) => f.mcDropoutStd)),
    },
  };
}

/** {class: p} in class order. */
export function byClass(classes: readonly string[], values: ArrayLike<number>): Record<string, number> {
  return Object.fromEntries(classes.map((c, i) => [c, values[i]!]));
}
