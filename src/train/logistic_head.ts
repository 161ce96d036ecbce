// Fits a linear head as a logistic regression on the frozen backbone's cached, pooled features.
// The penalty is chosen by cross-validation INSIDE the training folds: each training fold of the
// dataset is held out in turn (patients never straddle folds), the penalty with the best pooled
// out-of-fold balanced accuracy wins (ties: the lower class-balanced log-loss), and the final
// model is fitted on every training-fold frame (the run's validation split included; the test
// fold is never read). A tiny validation split (a few patients) picked penalties almost at
// random on the real data; the training folds' own folds hold four times as many patients.
// The standardisation (and, with classBias 'fitted', per-class offsets fitted on the held-out
// training folds' predictions) is folded into the network's classifier, so the saved model is an
// ordinary network that every front end runs.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import { writeJsonAtomicSync } from '../util/atomic.js';
import { fitLogistic, foldStandardization, logisticProbabilities, standardize, standardizer, type LogisticModel } from './logistic.js';
import { selectionMetrics } from './head_trainer.js';
import { argMax } from '../decision/combine.js';

/** A logistic head's penalty search and class offsets (logistic.json), in the fold folder. */
export const LOGISTIC_FILE = 'logistic.json';

/** The frames a logistic head learns from: one pooled feature vector per entry (frame or view). */
export interface LogisticData {
  /** n×d, row-major. */
  x: Float32Array;
  n: number;
  d: number;
  y: Int32Array;
  /** Loss weight of each entry (a frame's views share its weight). */
  weights: Float64Array;
  /** Inner fold of each entry (its dataset fold): held out together. */
  group: Int32Array;
  /** Whether the entry is a frame as it is (view 0), the one scored when its group is held out. */
  scored: Uint8Array;
  /**
   * The invariance penalty (TrainConfig.invariance): entries with base[e] ≥ 0 are augmented views
   * of entry base[e]. They are not rows of the fit; the fit pays weight/2 times the weighted mean
   * squared change of its logits from each base to its views. Absent: every entry is a row.
   */
  invariance?: { weight: number; base: Int32Array };
}

export interface PenaltyResult {
  penalty: number;
  /** Pooled over the held-out inner folds. */
  innerBalancedAccuracy: number;
  innerAccuracy: number;
  innerBalancedLogLoss: number;
  /**
   * With the invariance penalty: how the held-out frames' augmented views move the decision
   * (the share of views whose label differs from their frame's, and the mean change of the
   * frame's top class probability), pooled over the inner folds: stability on patients unseen
   * (the fit's own probabilities, before any class offsets).
   */
  innerViewFlipRate?: number;
  innerViewTopProbChange?: number;
}

export interface LogisticHeadResult {
  penalty: number;
  /** The invariance penalty's weight (0: none). */
  invariance: number;
  /** Per-class offsets added to the classifier's logits (all 0 without classBias 'fitted'). */
  classBias: number[];
  innerFolds: number[];
  grid: PenaltyResult[];
  /** Out-of-fold class probabilities of the scored entries under the chosen penalty, with the class offsets (calibration data). */
  outOfFold: { entry: number; probabilities: number[] }[];
  seconds: number;
}

function balancedLogLoss(probs: Float64Array, labels: ArrayLike<number>, classes: number): number {
  const sums = new Array<number>(classes).fill(0);
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) {
    sums[labels[i]!]! -= Math.log(Math.max(probs[i * classes + labels[i]!]!, 1e-12));
    counts[labels[i]!]! += 1;
  }
  const present = counts.map((c, k) => (c > 0 ? sums[k]! / c : -1)).filter((v) => v >= 0);
  return present.reduce((a, b) => a + b, 0) / present.length;
}

/** The single Dense (softmax) layer a logistic head must consist of. */
function classifierLayer(head: tfl.LayersModel): tfl.LayersModel['layers'][number] {
  const weighted = head.layers.filter((layer) => layer.getWeights().length > 0);
  if (weighted.length !== 1 || weighted[0]!.getClassName() !== 'Dense') {
    throw new PocovidError(
      `a logistic head needs a fully frozen backbone under a linear head (one Dense layer to fit); this head trains ${weighted.map((l) => l.name).join(', ')}: use --head logistic --trainable-layers 0`,
    );
  }
  return weighted[0]!;
}

/** Indices of the entries of `data` where `keep(i)` holds. */
function subset(data: LogisticData, keep: (i: number) => boolean): number[] {
  const rows: number[] = [];
  for (let i = 0; i < data.n; i++) if (keep(i)) rows.push(i);
  return rows;
}

/** Whether entry i is a row of the fit (not a view that enters through the invariance penalty). */
const isRow = (data: LogisticData, i: number): boolean => !data.invariance || data.invariance.base[i]! < 0;

/**
 * Per inner fold g, Σ w·δδᵀ over its views (δ = view − base, raw features; w = the base's loss
 * weight) and Σ w: a fit on some folds standardises and sums those of its folds.
 */
interface ChangeMoments {
  byGroup: Map<number, { sum: Float64Array; weight: number }>;
}

function changeMoments(data: LogisticData): ChangeMoments | undefined {
  if (!data.invariance) return undefined;
  const { d } = data;
  const byGroup = new Map<number, { sum: Float64Array; weight: number }>();
  const delta = new Float64Array(d);
  for (let e = 0; e < data.n; e++) {
    const base = data.invariance.base[e]!;
    if (base < 0) continue;
    const g = data.group[e]!;
    let m = byGroup.get(g);
    if (!m) byGroup.set(g, (m = { sum: new Float64Array(d * d), weight: 0 }));
    const w = data.weights[base]!;
    for (let j = 0; j < d; j++) delta[j] = data.x[e * d + j]! - data.x[base * d + j]!;
    // The upper triangle only; mirrored once the sums are complete.
    for (let j = 0; j < d; j++) {
      const wj = w * delta[j]!;
      if (wj === 0) continue;
      const row = j * d;
      for (let l = j; l < d; l++) m.sum[row + l]! += wj * delta[l]!;
    }
    m.weight += w;
  }
  for (const { sum } of byGroup.values()) for (let j = 0; j < d; j++) for (let l = 0; l < j; l++) sum[j * d + l] = sum[l * d + j]!;
  return { byGroup };
}

/** weight · (mean of δδᵀ over the given folds) in the standardised coordinates δ_j / std_j. */
function standardisedPenalty(moments: ChangeMoments, groups: readonly number[], std: Float64Array, weight: number, d: number): Float64Array | undefined {
  const s = new Float64Array(d * d);
  let total = 0;
  for (const g of groups) {
    const m = moments.byGroup.get(g);
    if (!m) continue;
    for (let i = 0; i < s.length; i++) s[i]! += m.sum[i]!;
    total += m.weight;
  }
  if (total === 0) return undefined;
  for (let j = 0; j < d; j++) for (let l = 0; l < d; l++) s[j * d + l] = (s[j * d + l]! * weight) / (total * std[j]! * std[l]!);
  return s;
}

function gather(data: LogisticData, rows: number[]): { x: Float64Array; y: Int32Array; w: Float64Array } {
  const x = new Float64Array(rows.length * data.d);
  rows.forEach((r, i) => x.set(data.x.subarray(r * data.d, (r + 1) * data.d), i * data.d));
  return { x, y: Int32Array.from(rows, (r) => data.y[r]!), w: Float64Array.from(rows, (r) => data.weights[r]!) };
}

/**
 * Fits on `rows` (standardised by their own statistics), with the invariance penalty of the views
 * in `groups` when the data has one; returns the model on raw features.
 */
function fitRows(
  data: LogisticData,
  rows: number[],
  penalty: number,
  classes: number,
  invariance: { moments: ChangeMoments; groups: readonly number[] } | undefined,
  init?: { raw: LogisticModel },
): LogisticModel & { s: ReturnType<typeof standardizer>; raw: LogisticModel } {
  const part = gather(data, rows);
  const s = standardizer(part.x, rows.length, data.d);
  const x = standardize(part.x, rows.length, data.d, s);
  const quadratic = invariance && data.invariance ? standardisedPenalty(invariance.moments, invariance.groups, s.std, data.invariance.weight, data.d) : undefined;
  const model = fitLogistic({ x, n: rows.length, d: data.d, y: part.y, classes, weights: part.w }, { l2: penalty, init: init?.raw, ...(quadratic ? { quadratic } : {}) });
  return { ...foldStandardization(model, s), s, raw: model };
}

/** Views of held-out frames against their frames: label flips and the change of the frame's top probability. */
function viewChanges(frameProbs: Float64Array, viewProbs: Float64Array, pairs: number, classes: number): { flips: number; change: number } {
  let flips = 0;
  let change = 0;
  for (let i = 0; i < pairs; i++) {
    const f = frameProbs.subarray(i * classes, (i + 1) * classes);
    const v = viewProbs.subarray(i * classes, (i + 1) * classes);
    const top = argMax(f);
    if (argMax(v) !== top) flips++;
    change += Math.abs(v[top]! - f[top]!);
  }
  return { flips, change };
}

/**
 * Offsets δ (the last class's fixed at 0) that minimise the class-balanced cross-entropy of
 * softmax(log p + δ) over out-of-fold predictions: a convex problem, solved by Newton steps on the
 * K−1 free offsets (gradient descent would do; K is 2–4). Patients held out look less like their
 * class than the training patients do (the model is overconfident about the kinds it has seen),
 * so the held-out predictions say how far to move each class's prior.
 */
export function fitClassBias(probs: Float64Array, labels: ArrayLike<number>, weights: ArrayLike<number>, classes: number): number[] {
  const n = labels.length;
  const classTotal = new Array<number>(classes).fill(0);
  for (let i = 0; i < n; i++) classTotal[labels[i]!]! += weights[i]!;
  // Every class present weighs the same in all.
  const w = Float64Array.from({ length: n }, (_, i) => weights[i]! / classTotal[labels[i]!]!);
  const delta = new Float64Array(classes);
  const free = classes - 1;
  for (let iteration = 0; iteration < 50; iteration++) {
    const grad = new Float64Array(free);
    const hess = new Float64Array(free * free);
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      const z = new Float64Array(classes);
      for (let c = 0; c < classes; c++) {
        z[c] = Math.log(Math.max(probs[i * classes + c]!, 1e-12)) + delta[c]!;
        max = Math.max(max, z[c]!);
      }
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += z[c] = Math.exp(z[c]! - max);
      for (let c = 0; c < classes; c++) z[c]! /= sum;
      for (let a = 0; a < free; a++) {
        grad[a]! += w[i]! * (z[a]! - (labels[i] === a ? 1 : 0));
        for (let b = 0; b < free; b++) hess[a * free + b]! += w[i]! * z[a]! * ((a === b ? 1 : 0) - z[b]!);
      }
    }
    // Solve hess · step = grad (Gauss–Jordan; a tiny ridge keeps it invertible).
    const m = Array.from({ length: free }, (_, a) => [...Array.from({ length: free }, (_, b) => hess[a * free + b]! + (a === b ? 1e-9 : 0)), grad[a]!]);
    for (let col = 0; col < free; col++) {
      let pivot = col;
      for (let r = col + 1; r < free; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
      [m[col], m[pivot]] = [m[pivot]!, m[col]!];
      for (let r = 0; r < free; r++) {
        if (r === col) continue;
        const f = m[r]![col]! / m[col]![col]!;
        for (let k = col; k <= free; k++) m[r]![k]! -= f * m[col]![k]!;
      }
    }
    let largest = 0;
    for (let a = 0; a < free; a++) {
      const step = m[a]![free]! / m[a]![a]!;
      delta[a]! -= step;
      largest = Math.max(largest, Math.abs(step));
    }
    if (largest < 1e-8) break;
  }
  return Array.from(delta);
}

/** softmax(log p + δ): class probabilities with per-class logit offsets added. */
export function shiftProbabilities(probs: ArrayLike<number>, offsets: readonly number[]): number[] {
  const z = Array.from({ length: probs.length }, (_, c) => Math.log(Math.max(probs[c]!, 1e-300)) + offsets[c]!);
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

export function fitLogisticHead(
  head: tfl.LayersModel,
  data: LogisticData,
  penalties: readonly number[],
  classes: number,
  logFile?: string,
  options: { classBias?: 'fitted' | 'none' } = {},
): LogisticHeadResult {
  const started = Date.now();
  const layer = classifierLayer(head);
  const innerFolds = [...new Set(data.group)].sort((a, b) => a - b);
  if (innerFolds.length < 2) throw new PocovidError(`choosing a logistic head's penalty needs at least 2 training folds; the training data has ${innerFolds.length}`);
  const order = [...penalties].sort((a, b) => b - a);
  const moments = changeMoments(data);
  // Per inner fold, the penalty path from the largest penalty down, each fit warm-starting the next.
  const heldOutProbs = new Map<number, Float64Array>(); // penalty → probs of all scored rows (by row index)
  for (const p of order) heldOutProbs.set(p, new Float64Array(data.n * classes));
  const viewStats = new Map<number, { flips: number; change: number; pairs: number }>();
  for (const p of order) viewStats.set(p, { flips: 0, change: 0, pairs: 0 });
  for (const fold of innerFolds) {
    const trainRows = subset(data, (i) => data.group[i] !== fold && isRow(data, i));
    const testRows = subset(data, (i) => data.group[i] === fold && data.scored[i] === 1);
    const test = gather(data, testRows);
    // The held-out fold's views and their frames (the stability on unseen patients).
    const viewRows = data.invariance ? subset(data, (i) => data.group[i] === fold && !isRow(data, i)) : [];
    const views = gather(data, viewRows);
    const viewBases = gather(data, viewRows.map((r) => data.invariance!.base[r]!));
    const trainGroups = innerFolds.filter((g) => g !== fold);
    let previous: ReturnType<typeof fitRows> | undefined;
    for (const penalty of order) {
      previous = fitRows(data, trainRows, penalty, classes, moments && { moments, groups: trainGroups }, previous);
      const probs = logisticProbabilities(previous, test.x, testRows.length);
      const target = heldOutProbs.get(penalty)!;
      testRows.forEach((r, i) => target.set(probs.subarray(i * classes, (i + 1) * classes), r * classes));
      if (viewRows.length) {
        const changes = viewChanges(logisticProbabilities(previous, viewBases.x, viewRows.length), logisticProbabilities(previous, views.x, viewRows.length), viewRows.length, classes);
        const stats = viewStats.get(penalty)!;
        stats.flips += changes.flips;
        stats.change += changes.change;
        stats.pairs += viewRows.length;
      }
    }
  }
  const scoredRows = subset(data, (i) => data.scored[i] === 1);
  const labels = scoredRows.map((r) => data.y[r]!);
  const grid: PenaltyResult[] = order.map((penalty) => {
    const all = heldOutProbs.get(penalty)!;
    const probs = new Float64Array(scoredRows.length * classes);
    scoredRows.forEach((r, i) => probs.set(all.subarray(r * classes, (r + 1) * classes), i * classes));
    const rows = scoredRows.map((_, i) => Float32Array.from(probs.subarray(i * classes, (i + 1) * classes)));
    const metrics = selectionMetrics(rows, labels, classes);
    const stats = viewStats.get(penalty)!;
    return {
      penalty,
      innerBalancedAccuracy: metrics.balancedAccuracy,
      innerAccuracy: metrics.accuracy,
      innerBalancedLogLoss: balancedLogLoss(probs, labels, classes),
      ...(stats.pairs ? { innerViewFlipRate: stats.flips / stats.pairs, innerViewTopProbChange: stats.change / stats.pairs } : {}),
    };
  });
  let best = grid[0]!;
  for (const g of grid) {
    if (g.innerBalancedAccuracy > best.innerBalancedAccuracy + 1e-9 || (Math.abs(g.innerBalancedAccuracy - best.innerBalancedAccuracy) <= 1e-9 && g.innerBalancedLogLoss < best.innerBalancedLogLoss)) best = g;
  }
  const final = fitRows(data, subset(data, (i) => isRow(data, i)), best.penalty, classes, moments && { moments, groups: innerFolds });
  const chosen = heldOutProbs.get(best.penalty)!;
  let classBias = new Array<number>(classes).fill(0);
  if (options.classBias === 'fitted') {
    const probs = new Float64Array(scoredRows.length * classes);
    scoredRows.forEach((r, i) => probs.set(chosen.subarray(r * classes, (r + 1) * classes), i * classes));
    classBias = fitClassBias(probs, labels, scoredRows.map((r) => data.weights[r]!), classes);
  }
  const kernel = tf.tensor2d(Float32Array.from(final.w), [data.d, classes]);
  const bias = tf.tensor1d(Float32Array.from(final.b, (b, c) => b + classBias[c]!));
  layer.setWeights([kernel, bias]);
  tf.dispose([kernel, bias]);
  const result: LogisticHeadResult = {
    penalty: best.penalty,
    invariance: data.invariance?.weight ?? 0,
    classBias,
    innerFolds,
    grid,
    // The calibration data must be what the saved classifier outputs on unseen patients: the same
    // offsets as its bias, or the prediction sets are calibrated on another model's scores.
    outOfFold: scoredRows.map((r) => ({ entry: r, probabilities: shiftProbabilities(chosen.subarray(r * classes, (r + 1) * classes), classBias) })),
    seconds: (Date.now() - started) / 1000,
  };
  // Runs written before the offsets joined the calibration data say nothing here (see eval/learned_video.ts).
  if (logFile) writeJsonAtomicSync(logFile, { ...result, outOfFold: undefined, outOfFoldHasClassBias: true });
  return result;
}
