// Split-conformal prediction sets (adaptive prediction sets, APS, and its regularised form RAPS;
// Romano et al. 2020, Angelopoulos et al. 2021). Pure arithmetic with no Node or TF.js import, so
// the CLI, the server and the page build the same set from the same calibration.
//
// A calibration holds the non-conformity scores of held-out examples (a fold's validation split,
// or a cross-validation's out-of-fold predictions), sorted. For a target coverage 1 − α the
// threshold is the ⌈(n+1)(1−α)⌉-th smallest score; a new example's set holds every class whose
// score is at most that threshold. If the calibration examples and the new one are exchangeable,
// the true class is in the set with probability at least 1 − α. Keeping the scores rather than
// one threshold lets evaluate and predict choose the coverage without recalibrating.
//
// Decisions made here (documented in README):
// - Non-randomised scores: the same input always gets the same set.
// - The top class is always in the set: a set can then never be empty, and adding a class only
//   raises coverage, so the guarantee still holds.
// - Too few calibration examples for the coverage ((n+1)(1−α) > n): the threshold is infinite and
//   every set holds every class, an honest "cannot decide" rather than a false promise.

export const CONFORMAL_METHODS = ['aps', 'raps'] as const;
export type ConformalMethod = (typeof CONFORMAL_METHODS)[number];

/** Where a set is formed: one frame, one video (mean of its frames), one exam (src/eval/exam.ts). */
export const CONFORMAL_LEVELS = ['frame', 'video', 'patient'] as const;
export type ConformalLevel = (typeof CONFORMAL_LEVELS)[number];

export const DEFAULT_COVERAGE = 0.9;
/** RAPS defaults: a small penalty from the second class on (with 3 classes k_reg = 1 is the only useful choice). */
export const DEFAULT_RAPS_LAMBDA = 0.01;
export const DEFAULT_RAPS_K_REG = 1;

export interface ScoreRule {
  method: ConformalMethod;
  /** RAPS: penalty per rank beyond kReg. */
  lambda: number;
  /** RAPS: ranks (1-based) up to kReg carry no penalty. */
  kReg: number;
}

/** The scores of one level's calibration examples, ascending. */
export interface LevelCalibration {
  n: number;
  scores: number[];
}

export interface ConformalCalibration extends ScoreRule {
  kind: 'pocovid-conformal';
  version: 1;
  /** Class order of the probabilities the scores were computed from. */
  classes: string[];
  /** The coverage predict uses unless told otherwise. */
  coverage: number;
  /**
   * 'validation': each fold's own validation split (never trained on, but it chose the checkpoint);
   * 'out-of-fold': a cross-validation's pooled test predictions, for a model refit on all the data
   * or the fold ensemble (their scores come from the fold models, not from this model);
   * 'held-out': the files a site held back when it adapted the model in the page (src/adapt).
   */
  calibratedOn: 'validation' | 'out-of-fold' | 'held-out';
  levels: Partial<Record<ConformalLevel, LevelCalibration>>;
}

/** One example to calibrate on or to score: class probabilities and the true class index. */
export interface LabelledProbabilities {
  probabilities: readonly number[];
  label: number;
}

export function scoreRule(method: ConformalMethod = 'aps', lambda = DEFAULT_RAPS_LAMBDA, kReg = DEFAULT_RAPS_K_REG): ScoreRule {
  return method === 'aps' ? { method, lambda: 0, kReg: 0 } : { method, lambda, kReg };
}

/** Class indices by decreasing probability; equal probabilities keep class order. */
export function rankClasses(probabilities: readonly number[]): number[] {
  return probabilities.map((_, k) => k).sort((a, b) => probabilities[b]! - probabilities[a]! || a - b);
}

/**
 * The non-conformity score of class `label`: the share of the probability mass held by the classes
 * ranked at or above it (APS), plus λ·max(0, rank − kReg) with rank counted from 1 (RAPS). Larger = the label
 * is less plausible.
 */
export function conformalScore(probabilities: readonly number[], label: number, rule: ScoreRule): number {
  const order = rankClasses(probabilities);
  const total = probabilities.reduce((a, b) => a + b, 0);
  let mass = 0;
  for (const [i, k] of order.entries()) {
    mass += probabilities[k]!;
    if (k === label) {
      // The last class holds all the mass: exactly 1, not a float sum a hair above or below it,
      // which would split the many "last class" scores into an arbitrary order at the threshold.
      const share = i === order.length - 1 || total <= 0 ? 1 : Math.min(1, mass / total);
      return share + (rule.method === 'raps' ? rule.lambda * Math.max(0, i + 1 - rule.kReg) : 0);
    }
  }
  throw new RangeError(`class ${label} is not one of the ${probabilities.length} classes`);
}

/** Checks a coverage target: a number strictly between 0 and 1. */
export function checkCoverage(coverage: number): void {
  if (!(coverage > 0 && coverage < 1)) throw new RangeError(`coverage must be between 0 and 1 (exclusive), got ${coverage}`);
}

/** The rank ⌈(n+1)·coverage⌉ (1-based) whose score is the threshold; > n means no finite threshold. */
export function quantileRank(n: number, coverage: number): number {
  checkCoverage(coverage);
  // The small epsilon keeps (n+1)·coverage that is an integer in exact arithmetic (e.g. 10 · 0.9) from rounding up.
  return Math.ceil((n + 1) * coverage - 1e-9);
}

/** The threshold from ascending scores; +Infinity when there are too few of them for the coverage. */
export function conformalThreshold(sortedScores: readonly number[], coverage: number): number {
  const rank = quantileRank(sortedScores.length, coverage);
  return rank > sortedScores.length ? Number.POSITIVE_INFINITY : sortedScores[rank - 1]!;
}

/** Fewest calibration examples for which the coverage has a finite threshold. */
export function minimumCalibrationSize(coverage: number): number {
  checkCoverage(coverage);
  let n = 1;
  while (quantileRank(n, coverage) > n) n++;
  return n;
}

/** The set: the classes whose score is at most the threshold, in ranking order; the top class always. */
export function predictionSet(probabilities: readonly number[], threshold: number, rule: ScoreRule): number[] {
  const order = rankClasses(probabilities);
  return order.filter((k, i) => i === 0 || conformalScore(probabilities, k, rule) <= threshold);
}

/** Sorted scores of the examples' true classes. */
export function calibrateLevel(examples: readonly LabelledProbabilities[], rule: ScoreRule): LevelCalibration {
  const scores = examples.map((e) => conformalScore(e.probabilities, e.label, rule)).sort((a, b) => a - b);
  return { n: scores.length, scores };
}

export interface CalibrateOptions {
  classes: readonly string[];
  coverage?: number;
  method?: ConformalMethod;
  lambda?: number;
  kReg?: number;
  calibratedOn: ConformalCalibration['calibratedOn'];
}

/** A calibration from labelled examples at each level given (a level with no example is left out). */
export function calibrate(examples: Partial<Record<ConformalLevel, readonly LabelledProbabilities[]>>, options: CalibrateOptions): ConformalCalibration {
  const coverage = options.coverage ?? DEFAULT_COVERAGE;
  checkCoverage(coverage);
  const rule = scoreRule(options.method, options.lambda, options.kReg);
  const levels: ConformalCalibration['levels'] = {};
  for (const level of CONFORMAL_LEVELS) {
    const given = examples[level];
    if (given && given.length > 0) levels[level] = calibrateLevel(given, rule);
  }
  return { kind: 'pocovid-conformal', version: 1, ...rule, classes: [...options.classes], coverage, calibratedOn: options.calibratedOn, levels };
}

export interface ConformalSet {
  /** Class indices in ranking order. */
  classes: number[];
  threshold: number;
  coverage: number;
  level: ConformalLevel;
  /** Calibration examples behind the threshold. */
  calibrationSize: number;
}

/** The set of one example at a level, at the calibration's coverage unless `coverage` is given. */
export function conformalSet(calibration: ConformalCalibration, level: ConformalLevel, probabilities: readonly number[], coverage = calibration.coverage): ConformalSet {
  const cal = calibration.levels[level];
  if (!cal) throw new RangeError(`the calibration has no ${level}-level scores`);
  if (probabilities.length !== calibration.classes.length) {
    throw new RangeError(`${probabilities.length} probabilities for the calibration's ${calibration.classes.length} classes`);
  }
  const threshold = conformalThreshold(cal.scores, coverage);
  return { classes: predictionSet(probabilities, threshold, calibration), threshold, coverage, level, calibrationSize: cal.n };
}

/** "covid", "covid or pneumonia", "covid, pneumonia or regular". */
export function describeClasses(names: readonly string[]): string {
  if (names.length <= 1) return names[0] ?? '';
  return `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

/** What a front end shows: the class when the set holds one, else the abstention in words. */
export function describeSet(set: readonly number[], classNames: readonly string[]): { decided: boolean; text: string } {
  const names = set.map((k) => classNames[k]!);
  if (names.length === 1) return { decided: true, text: names[0]! };
  return { decided: false, text: `cannot decide between ${describeClasses(names).replace(/ or ([^,]+)$/, ' and $1')}` };
}

/** How sets behaved on labelled examples. */
export interface CoverageSummary {
  n: number;
  /** Share of examples whose set holds the true class. */
  coverage: number;
  meanSetSize: number;
  /** Examples per set size (index = size). */
  setSizes: number[];
  /** Share of examples whose set holds exactly one class (a decision, not an abstention). */
  singletonRate: number;
  /** Among those, the share whose one class is the true class (NaN when there are none). */
  singletonAccuracy: number;
  threshold: number;
}

export function summariseSets(examples: readonly LabelledProbabilities[], threshold: number, rule: ScoreRule): CoverageSummary {
  const classes = examples[0]?.probabilities.length ?? 0;
  const setSizes = new Array<number>(classes + 1).fill(0);
  let covered = 0;
  let sizeSum = 0;
  let singletons = 0;
  let singletonsRight = 0;
  for (const e of examples) {
    const set = predictionSet(e.probabilities, threshold, rule);
    setSizes[set.length]! += 1;
    sizeSum += set.length;
    if (set.includes(e.label)) covered++;
    if (set.length === 1) {
      singletons++;
      if (set[0] === e.label) singletonsRight++;
    }
  }
  const n = examples.length;
  return {
    n,
    coverage: n ? covered / n : Number.NaN,
    meanSetSize: n ? sizeSum / n : Number.NaN,
    setSizes,
    singletonRate: n ? singletons / n : Number.NaN,
    singletonAccuracy: singletons ? singletonsRight / singletons : Number.NaN,
    threshold,
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Why `value` is not a usable calibration, or undefined when it is one (for the model-folder schema). */
export function conformalProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'not an object';
  if (value.kind !== 'pocovid-conformal' || value.version !== 1) return 'not a pocovid conformal calibration (kind "pocovid-conformal", version 1)';
  if (!(CONFORMAL_METHODS as readonly unknown[]).includes(value.method)) return `method "${String(value.method)}" is not one of ${CONFORMAL_METHODS.join(', ')}`;
  if (!isFiniteNumber(value.lambda) || value.lambda < 0 || !isFiniteNumber(value.kReg) || value.kReg < 0) return 'lambda and kReg must be numbers >= 0';
  if (!Array.isArray(value.classes) || value.classes.length < 2 || !value.classes.every((c) => typeof c === 'string')) return 'classes must be at least two names';
  if (!isFiniteNumber(value.coverage) || !(value.coverage > 0 && value.coverage < 1)) return 'coverage must be between 0 and 1';
  if (!['validation', 'out-of-fold', 'held-out'].includes(value.calibratedOn as string)) return 'calibratedOn must be "validation", "out-of-fold" or "held-out"';
  if (!isObject(value.levels)) return 'levels must be an object';
  for (const [level, cal] of Object.entries(value.levels)) {
    if (!(CONFORMAL_LEVELS as readonly string[]).includes(level)) return `unknown level "${level}"`;
    if (!isObject(cal) || !Array.isArray(cal.scores) || cal.n !== cal.scores.length) return `${level}: n must equal the number of scores`;
    const scores = cal.scores as unknown[];
    for (let i = 0; i < scores.length; i++) {
      if (!isFiniteNumber(scores[i]) || (i > 0 && (scores[i] as number) < (scores[i - 1] as number))) return `${level}: scores must be finite and ascending`;
    }
  }
  return undefined;
}

export function isConformalCalibration(value: unknown): value is ConformalCalibration {
  return conformalProblem(value) === undefined;
}
