// A learned video decision: attention pooling over a video's frames. Each frame's weight is a
// softmax over the frames of u · log p_i (p_i its class probabilities), and the video's
// probabilities are the weighted mean of its frames'. u = 0 is the mean rule; a large u_covid
// listens to the frames that see COVID most (a finding shown by a few frames is not averaged
// away). The embedding attended over is the head's own output (K numbers per frame) rather than
// the 1024-wide pooled feature: a query of K weights is what ~75 training videos can fit.
// Pure TypeScript (no TF.js, no Node), like combine.ts.

/** A frame's log-probabilities, floored so that one saturated frame cannot take every weight. */
const LOG_FLOOR = Math.log(1e-4);

function logFeatures(p: readonly number[]): number[] {
  return p.map((v) => Math.max(Math.log(Math.max(v, 0)), LOG_FLOOR));
}

/** The frames' weights (they sum to 1). */
export function attentionWeights(frames: readonly (readonly number[])[], query: readonly number[]): number[] {
  const scores = frames.map((p) => logFeatures(p).reduce((s, v, k) => s + v * query[k]!, 0));
  const max = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** The video's probabilities: the attention-weighted mean of its frames'. */
export function attentionPool(frames: readonly (readonly number[])[], query: readonly number[]): number[] {
  if (frames.length === 0) throw new Error('attentionPool: a video without frames');
  const a = attentionWeights(frames, query);
  const out = new Array<number>(frames[0]!.length).fill(0);
  frames.forEach((p, i) => p.forEach((v, k) => (out[k]! += a[i]! * v)));
  return out;
}

export interface AttentionVideo {
  frames: number[][];
  label: number;
}

export interface AttentionFit {
  query: number[];
  /** Class-balanced cross-entropy of the videos under the query, without the penalty. */
  loss: number;
  /** Under the mean rule (query 0), for comparison. */
  meanRuleLoss: number;
  /** Videos with at least two frames (the only ones the query changes). */
  videos: number;
  l2: number;
}

/** Class-balanced mean cross-entropy of the pooled videos, and its gradient in the query. */
export function attentionObjective(videos: readonly AttentionVideo[], query: readonly number[], classes: number): { loss: number; gradient: number[] } {
  const counts = new Array<number>(classes).fill(0);
  for (const v of videos) counts[v.label]! += 1;
  const present = counts.filter((c) => c > 0).length;
  let loss = 0;
  const gradient = new Array<number>(query.length).fill(0);
  for (const v of videos) {
    const w = 1 / (counts[v.label]! * present);
    const a = attentionWeights(v.frames, query);
    const phi = v.frames.map(logFeatures);
    const q = v.frames.reduce((s, p, i) => s + a[i]! * p[v.label]!, 0);
    loss -= w * Math.log(Math.max(q, 1e-300));
    // ∂q/∂u = Σ_i a_i p_iy (φ_i − φ̄), φ̄ = Σ_j a_j φ_j.
    const phiBar = new Array<number>(query.length).fill(0);
    phi.forEach((f, i) => f.forEach((x, k) => (phiBar[k]! += a[i]! * x)));
    for (let i = 0; i < v.frames.length; i++) {
      const c = (a[i]! * v.frames[i]![v.label]!) / Math.max(q, 1e-300);
      for (let k = 0; k < query.length; k++) gradient[k]! -= w * c * (phi[i]![k]! - phiBar[k]!);
    }
  }
  return { loss, gradient };
}

/**
 * The query minimising the class-balanced video cross-entropy + l2/2 · |u|² (gradient descent
 * with backtracking from u = 0, the mean rule). The penalty is fixed, not tuned: with a few dozen
 * videos, tuning it would need the very videos it is scored on.
 */
export function fitAttentionPooling(videos: readonly AttentionVideo[], classes: number, options: { l2?: number; iterations?: number } = {}): AttentionFit {
  const l2 = options.l2 ?? 1;
  const multi = videos.filter((v) => v.frames.length >= 2);
  const objective = (u: number[]) => {
    const { loss, gradient } = attentionObjective(multi, u, classes);
    return { loss, value: loss + (l2 / 2) * u.reduce((s, x) => s + x * x, 0), gradient: gradient.map((g, k) => g + l2 * u[k]!) };
  };
  let u = new Array<number>(classes).fill(0);
  const meanRule = multi.length > 0 ? objective(u) : { loss: 0, value: 0, gradient: u.slice() };
  let current = meanRule;
  let step = 1;
  for (let iteration = 0; iteration < (options.iterations ?? 300) && multi.length > 0; iteration++) {
    const g = current.gradient;
    const norm2 = g.reduce((s, x) => s + x * x, 0);
    if (norm2 < 1e-16) break;
    let accepted = false;
    for (let tries = 0; tries < 40; tries++) {
      const candidate = u.map((x, k) => x - step * g[k]!);
      const next = objective(candidate);
      if (next.value <= current.value - 1e-4 * step * norm2) {
        u = candidate;
        current = next;
        step *= 2;
        accepted = true;
        break;
      }
      step /= 2;
    }
    if (!accepted) break;
  }
  return { query: u, loss: current.loss, meanRuleLoss: meanRule.loss, videos: multi.length, l2 };
}
