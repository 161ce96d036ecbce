// Multinomial logistic regression with per-example weights and an L2 penalty, fitted by L-BFGS
// in plain TypeScript (float64). It is the "linear probe" on frozen, pooled backbone features:
// a convex problem, so the fit is deterministic and needs no epochs, learning rate or early
// stopping — only the penalty, which the caller chooses on the validation split.

export interface LogisticProblem {
  /** n rows of d features, row-major. */
  x: Float64Array;
  n: number;
  d: number;
  /** Class index of each row. */
  y: Int32Array | number[];
  classes: number;
  /** Weight of each row (absent: all 1); the loss is the weighted mean. */
  weights?: Float64Array | number[];
}

/** W (d×K, row-major) and b (K). */
export interface LogisticModel {
  w: Float64Array;
  b: Float64Array;
  d: number;
  classes: number;
}

export interface FitOptions {
  /** Penalty λ/2 · ||W||² added to the weighted mean cross-entropy (the bias is not penalised). */
  l2: number;
  maxIterations?: number;
  /** Stop when the gradient's largest entry is below this. */
  tolerance?: number;
  /** Start from this model (warm start along a penalty path). */
  init?: LogisticModel;
  /**
   * A d×d positive semi-definite matrix S (row-major): the penalty ½·Σ_c w_cᵀ S w_c on the class
   * weight columns. With S the (weighted) mean of δδᵀ over feature changes δ, it is half the mean
   * squared change of the logits under those changes (src/train/logistic_head.ts, invariance).
   */
  quadratic?: Float64Array;
}

/** Row-wise softmax probabilities of `model` on x (n×K, row-major). */
export function logisticProbabilities(model: LogisticModel, x: Float64Array | Float32Array, n: number): Float64Array {
  const { d, classes: k, w, b } = model;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      let z = b[c]!;
      for (let j = 0; j < d; j++) z += x[i * d + j]! * w[j * k + c]!;
      out[i * k + c] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) sum += out[i * k + c] = Math.exp(out[i * k + c]! - max);
    for (let c = 0; c < k; c++) out[i * k + c]! /= sum;
  }
  return out;
}

/** Objective and gradient at parameters θ = [W (d·K), b (K)]. */
export function logisticObjective(problem: LogisticProblem, l2: number, theta: Float64Array, quadratic?: Float64Array): { value: number; gradient: Float64Array } {
  const { x, n, d, y, classes: k } = problem;
  const model: LogisticModel = { w: theta.subarray(0, d * k), b: theta.subarray(d * k), d, classes: k };
  const p = logisticProbabilities(model, x, n);
  const gradient = new Float64Array(theta.length);
  let totalWeight = 0;
  for (let i = 0; i < n; i++) totalWeight += problem.weights ? problem.weights[i]! : 1;
  let value = 0;
  const residual = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const wi = (problem.weights ? problem.weights[i]! : 1) / totalWeight;
    if (wi === 0) continue;
    const label = y[i]!;
    value -= wi * Math.log(Math.max(p[i * k + label]!, 1e-300));
    for (let c = 0; c < k; c++) residual[c] = wi * (p[i * k + c]! - (c === label ? 1 : 0));
    for (let j = 0; j < d; j++) {
      const xij = x[i * d + j]!;
      if (xij === 0) continue;
      for (let c = 0; c < k; c++) gradient[j * k + c]! += xij * residual[c]!;
    }
    for (let c = 0; c < k; c++) gradient[d * k + c]! += residual[c]!;
  }
  for (let j = 0; j < d * k; j++) {
    value += 0.5 * l2 * theta[j]! * theta[j]!;
    gradient[j]! += l2 * theta[j]!;
  }
  if (quadratic) {
    if (quadratic.length !== d * d) throw new Error(`the quadratic penalty is ${quadratic.length} values, expected ${d}×${d}`);
    // (S·W)[j][c] = Σ_l S[j][l]·W[l][c]; value ½·Σ_j Σ_c W[j][c]·(S·W)[j][c].
    const sw = new Float64Array(k);
    for (let j = 0; j < d; j++) {
      sw.fill(0);
      for (let l = 0; l < d; l++) {
        const sjl = quadratic[j * d + l]!;
        if (sjl === 0) continue;
        for (let c = 0; c < k; c++) sw[c]! += sjl * theta[l * k + c]!;
      }
      for (let c = 0; c < k; c++) {
        value += 0.5 * theta[j * k + c]! * sw[c]!;
        gradient[j * k + c]! += sw[c]!;
      }
    }
  }
  return { value, gradient };
}

const dot = (a: Float64Array, b: Float64Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/**
 * Fits by L-BFGS (memory 10) with a backtracking Armijo line search. With a quadratic penalty S the
 * problem is first turned into a plain ridge one: with M = S + l2·I = L·Lᵀ (Cholesky) and V = Lᵀ·W,
 * ½·tr(Wᵀ M W) = ½‖V‖² and x·W = (x·L⁻ᵀ)·V, so the fit runs on x·L⁻ᵀ with penalty 1 and W = L⁻ᵀ·V.
 * Same optimum; but S makes the problem far worse conditioned (L-BFGS ran into its iteration cap
 * on real features) and every step costs d²·K more, which the change of variables removes.
 */
export function fitLogistic(problem: LogisticProblem, options: FitOptions): LogisticModel & { iterations: number; objective: number } {
  if (options.quadratic) return fitWithQuadratic(problem, options, options.quadratic);
  return fitPlain(problem, options);
}

/** The lower Cholesky factor of a symmetric positive-definite d×d matrix (row-major). */
export function cholesky(m: Float64Array, d: number): Float64Array {
  const l = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let diagonal = m[j * d + j]!;
    for (let p = 0; p < j; p++) diagonal -= l[j * d + p]! ** 2;
    if (!(diagonal > 0)) throw new Error(`the matrix is not positive definite (pivot ${j}: ${diagonal})`);
    const ljj = Math.sqrt(diagonal);
    l[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let v = m[i * d + j]!;
      const ri = i * d;
      const rj = j * d;
      for (let p = 0; p < j; p++) v -= l[ri + p]! * l[rj + p]!;
      l[ri + j] = v / ljj;
    }
  }
  return l;
}

function fitWithQuadratic(problem: LogisticProblem, options: FitOptions, quadratic: Float64Array): LogisticModel & { iterations: number; objective: number } {
  const { n, d, classes: k } = problem;
  if (quadratic.length !== d * d) throw new Error(`the quadratic penalty is ${quadratic.length} values, expected ${d}×${d}`);
  if (!(options.l2 > 0)) throw new Error('a quadratic penalty needs a positive l2 penalty as well');
  const m = Float64Array.from(quadratic);
  for (let j = 0; j < d; j++) m[j * d + j]! += options.l2;
  const l = cholesky(m, d);
  // Each row x_r → L⁻¹·x_r (forward substitution), i.e. x·L⁻ᵀ.
  const x = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    const row = r * d;
    for (let i = 0; i < d; i++) {
      let v = problem.x[row + i]!;
      for (let p = 0; p < i; p++) v -= l[i * d + p]! * x[row + p]!;
      x[row + i] = v / l[i * d + i]!;
    }
  }
  // Warm start: V = Lᵀ·W.
  let init: LogisticModel | undefined;
  if (options.init) {
    const v = new Float64Array(d * k);
    for (let i = 0; i < d; i++) for (let p = i; p < d; p++) for (let c = 0; c < k; c++) v[i * k + c]! += l[p * d + i]! * options.init.w[p * k + c]!;
    init = { w: v, b: options.init.b, d, classes: k };
  }
  const fit = fitPlain({ ...problem, x }, { l2: 1, ...(options.maxIterations ? { maxIterations: options.maxIterations } : {}), ...(options.tolerance ? { tolerance: options.tolerance } : {}), ...(init ? { init } : {}) });
  // W = L⁻ᵀ·V: back substitution with Lᵀ, column by column.
  const w = new Float64Array(d * k);
  for (let c = 0; c < k; c++) {
    for (let i = d - 1; i >= 0; i--) {
      let v = fit.w[i * k + c]!;
      for (let p = i + 1; p < d; p++) v -= l[p * d + i]! * w[p * k + c]!;
      w[i * k + c] = v / l[i * d + i]!;
    }
  }
  return { w, b: fit.b, d, classes: k, iterations: fit.iterations, objective: fit.objective };
}

function fitPlain(problem: LogisticProblem, options: FitOptions): LogisticModel & { iterations: number; objective: number } {
  const { d, classes: k } = problem;
  const maxIterations = options.maxIterations ?? 500;
  const tolerance = options.tolerance ?? 1e-6;
  const theta = new Float64Array(d * k + k);
  if (options.init) {
    theta.set(options.init.w, 0);
    theta.set(options.init.b, d * k);
  }
  let { value, gradient } = logisticObjective(problem, options.l2, theta);
  const memory: { s: Float64Array; y: Float64Array; rho: number }[] = [];
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    let gmax = 0;
    for (const g of gradient) gmax = Math.max(gmax, Math.abs(g));
    if (gmax < tolerance) break;
    // Two-loop recursion: direction = −H·g.
    const q = Float64Array.from(gradient);
    const alphas: number[] = [];
    for (let m = memory.length - 1; m >= 0; m--) {
      const { s, y, rho } = memory[m]!;
      const a = rho * dot(s, q);
      alphas[m] = a;
      for (let i = 0; i < q.length; i++) q[i]! -= a * y[i]!;
    }
    const last = memory[memory.length - 1];
    const scale = last ? dot(last.s, last.y) / dot(last.y, last.y) : 1 / Math.max(gmax, 1);
    for (let i = 0; i < q.length; i++) q[i]! *= scale;
    for (let m = 0; m < memory.length; m++) {
      const { s, y, rho } = memory[m]!;
      const beta = rho * dot(y, q);
      for (let i = 0; i < q.length; i++) q[i]! += s[i]! * (alphas[m]! - beta);
    }
    let slope = -dot(gradient, q);
    if (slope >= 0) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      memory.length = 0;
      q.set(gradient);
      slope = -dot(gradient, q);
    }
    let step = 1;
    let next: { value: number; gradient: Float64Array } | undefined;
    const candidate = new Float64Array(theta.length);
    for (let tries = 0; tries < 40; tries++) {
      for (let i = 0; i < theta.length; i++) candidate[i] = theta[i]! - step * q[i]!;
      next = logisticObjective(problem, options.l2, candidate);
      if (next.value <= value + 1e-4 * step * slope) break;
      step /= 2;
      next = undefined;
    }
    if (!next) break;
    const s = new Float64Array(theta.length);
    const y = new Float64Array(theta.length);
    for (let i = 0; i < theta.length; i++) {
      s[i] = candidate[i]! - theta[i]!;
      y[i] = next.gradient[i]! - gradient[i]!;
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      memory.push({ s, y, rho: 1 / sy });
      if (memory.length > 10) memory.shift();
    }
    const improvement = value - next.value;
    theta.set(candidate);
    value = next.value;
    gradient = next.gradient;
    if (improvement < 1e-12 * Math.max(1, Math.abs(value))) break;
  }
  return { w: theta.slice(0, d * k), b: theta.slice(d * k), d, classes: k, iterations, objective: value };
}

/** Per-feature mean and standard deviation (a constant feature gets std 1). */
export function standardizer(x: Float64Array, n: number, d: number): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= Math.max(n, 1);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j]! += (x[i * d + j]! - mean[j]!) ** 2;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]! / Math.max(n, 1)) || 1;
  return { mean, std };
}

/** (x − mean) / std, row by row, as a new array. */
export function standardize(x: Float64Array | Float32Array, n: number, d: number, s: { mean: Float64Array; std: Float64Array }): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = (x[i * d + j]! - s.mean[j]!) / s.std[j]!;
  return out;
}

/**
 * The same model on unstandardised features: W'[j] = W[j] / std[j], b' = b − Σ_j W[j]·mean[j]/std[j],
 * so that the network's own Dense layer, reading the raw pooled features, computes it exactly.
 */
export function foldStandardization(model: LogisticModel, s: { mean: Float64Array; std: Float64Array }): LogisticModel {
  const { d, classes: k } = model;
  const w = new Float64Array(d * k);
  const b = Float64Array.from(model.b);
  for (let j = 0; j < d; j++) {
    for (let c = 0; c < k; c++) {
      w[j * k + c] = model.w[j * k + c]! / s.std[j]!;
      b[c]! -= model.w[j * k + c]! * s.mean[j]! / s.std[j]!;
    }
  }
  return { w, b, d, classes: k };
}
