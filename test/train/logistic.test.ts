// The logistic-regression solver: its gradient against finite differences, the optimum's
// conditions, the priors under a huge penalty, and folding the standardisation into the weights.
import { describe, expect, it } from 'vitest';
import { fitLogistic, foldStandardization, logisticObjective, logisticProbabilities, standardize, standardizer, type LogisticProblem } from '../../src/train/logistic.js';
import { createRng } from '../../src/util/rng.js';

function problem(seed: number, n = 60, d = 5, k = 3): LogisticProblem {
  const rng = createRng(seed);
  const y = Array.from({ length: n }, (_, i) => i % k);
  const x = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) x[i * d + j] = rng.normal() + (j === y[i] ? 1.5 : 0) + 3;
  return { x, n, d, y, classes: k, weights: Array.from({ length: n }, () => 0.5 + rng.next()) };
}

/** The objective's gradient at θ equals its central differences, entry by entry. */
function expectCentralDifferences(objective: (theta: Float64Array) => { value: number; gradient: Float64Array }, theta: Float64Array): void {
  const { gradient } = objective(theta);
  const h = 1e-5;
  for (let i = 0; i < theta.length; i++) {
    const up = Float64Array.from(theta);
    const down = Float64Array.from(theta);
    up[i]! += h;
    down[i]! -= h;
    expect(gradient[i]).toBeCloseTo((objective(up).value - objective(down).value) / (2 * h), 6);
  }
}

describe('logistic regression', () => {
  it('has the gradient of its objective (central differences)', () => {
    const p = problem(1, 12, 3, 3);
    const rng = createRng(2);
    const theta = Float64Array.from({ length: 3 * 3 + 3 }, () => rng.normal() * 0.3);
    expectCentralDifferences((t) => logisticObjective(p, 0.7, t), theta);
  });

  it('reaches the optimum: a vanishing gradient, and a lower objective than any nearby point', () => {
    const p = problem(3);
    const fit = fitLogistic(p, { l2: 0.05, tolerance: 1e-8 });
    const theta = new Float64Array([...fit.w, ...fit.b]);
    const { value, gradient } = logisticObjective(p, 0.05, theta);
    expect(Math.max(...gradient.map(Math.abs))).toBeLessThan(1e-6);
    const rng = createRng(4);
    for (let t = 0; t < 20; t++) {
      const moved = theta.map((v) => v + rng.normal() * 1e-2);
      expect(logisticObjective(p, 0.05, moved).value).toBeGreaterThan(value);
    }
    // It separates the classes it was given.
    const probs = logisticProbabilities(fit, p.x, p.n);
    let correct = 0;
    for (let i = 0; i < p.n; i++) {
      const row = Array.from(probs.subarray(i * 3, i * 3 + 3));
      if (row.indexOf(Math.max(...row)) === p.y[i]) correct++;
    }
    expect(correct / p.n).toBeGreaterThan(0.8);
  });

  it('under a huge penalty predicts the weighted class shares for every row', () => {
    const p = problem(5);
    const fit = fitLogistic(p, { l2: 1e6 });
    const totals = [0, 0, 0];
    p.y.forEach((label, i) => (totals[label]! += p.weights![i]!));
    const sum = totals.reduce((a, b) => a + b, 0);
    const probs = logisticProbabilities(fit, p.x, p.n);
    for (let c = 0; c < 3; c++) expect(probs[c]).toBeCloseTo(totals[c]! / sum, 3);
  });

  it('folding the standardisation into W and b gives the same probabilities on raw features', () => {
    const p = problem(6);
    const s = standardizer(p.x, p.n, p.d);
    const fit = fitLogistic({ ...p, x: standardize(p.x, p.n, p.d, s) }, { l2: 0.1 });
    const onStandardized = logisticProbabilities(fit, standardize(p.x, p.n, p.d, s), p.n);
    const onRaw = logisticProbabilities(foldStandardization(fit, s), p.x, p.n);
    onRaw.forEach((v, i) => expect(v).toBeCloseTo(onStandardized[i]!, 10));
  });

  it('warm-starting gives the same optimum', () => {
    const p = problem(7);
    const cold = fitLogistic(p, { l2: 0.02, tolerance: 1e-9 });
    const warm = fitLogistic(p, { l2: 0.02, tolerance: 1e-9, init: fitLogistic(p, { l2: 1 }) });
    cold.w.forEach((v, i) => expect(warm.w[i]).toBeCloseTo(v, 4));
  });
});

describe('class bias fitted on held-out predictions', () => {
  it('recovers the offset that undoes a shifted prior, minimising the class-balanced cross-entropy', async () => {
    const { fitClassBias } = await import('../../src/train/logistic_head.js');
    // True posteriors of 3 classes, then class 0 pushed down by e^-1.5 and class 1 up by e^0.5.
    const rng = createRng(9);
    const n = 600;
    const labels: number[] = [];
    const probs = new Float64Array(n * 3);
    for (let i = 0; i < n; i++) {
      const y = i % 3;
      labels.push(y);
      const z = [0, 1, 2].map((c) => (c === y ? 1.2 : 0) + rng.normal() * 0.8 + (c === 0 ? -1.5 : c === 1 ? 0.5 : 0));
      const e = z.map(Math.exp);
      const s = e.reduce((a, b) => a + b, 0);
      e.forEach((v, c) => (probs[i * 3 + c] = v / s));
    }
    const delta = fitClassBias(probs, labels, new Array(n).fill(1), 3);
    expect(delta[2]).toBe(0);
    expect(delta[0]).toBeCloseTo(1.5, 0);
    expect(delta[1]).toBeCloseTo(-0.5, 0);
    // At the optimum the balanced loss is lower than with no offset and than nearby offsets.
    const loss = (d: number[]) => {
      const per = [0, 0, 0];
      const count = [0, 0, 0];
      for (let i = 0; i < n; i++) {
        const z = [0, 1, 2].map((c) => Math.log(probs[i * 3 + c]!) + d[c]!);
        const m = Math.max(...z);
        const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
        per[labels[i]!]! -= z[labels[i]!]! - lse;
        count[labels[i]!]! += 1;
      }
      return per.reduce((a, v, c) => a + v / count[c]!, 0);
    };
    expect(loss(delta)).toBeLessThan(loss([0, 0, 0]));
    for (const [a, b] of [[0.1, 0], [-0.1, 0], [0, 0.1], [0, -0.1]]) expect(loss(delta)).toBeLessThan(loss([delta[0]! + a!, delta[1]! + b!, 0]));
  });
});

describe('a logistic head fitted with class offsets', () => {
  it("calibrates on out-of-fold probabilities that carry the saved classifier's offsets", async () => {
    const tfl = await import('@tensorflow/tfjs-layers');
    await (await import('../../src/engine/index.js')).initEngine();
    const { fitLogisticHead, fitClassBias } = await import('../../src/train/logistic_head.js');
    // Four inner folds; class 0's features are weak, so held-out patients look less like class 0
    // than the fit expects and the fitted offsets are far from zero.
    const rng = createRng(21);
    const n = 240;
    const d = 4;
    const x = new Float32Array(n * d);
    const y = Int32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : i % 2 === 0 ? 1 : 2));
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) x[i * d + j] = rng.normal() + (j === y[i] ? (y[i] === 0 ? 0.6 : 2) : 0);
    const data = { x, n, d, y, weights: new Float64Array(n).fill(1), group: Int32Array.from({ length: n }, (_, i) => i % 4), scored: new Uint8Array(n).fill(1) };
    const input = tfl.input({ shape: [d] });
    const head = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 3, activation: 'softmax' }).apply(input) as ReturnType<typeof tfl.input> });
    const fit = fitLogisticHead(head, data, [0.01, 1], 3, undefined, { classBias: 'fitted' });
    expect(Math.max(...fit.classBias.map(Math.abs))).toBeGreaterThan(0.05);
    // Offsets fitted again on the calibration data are ~0: the offsets are already in it.
    const probs = Float64Array.from(fit.outOfFold.flatMap((o) => o.probabilities));
    const again = fitClassBias(probs, fit.outOfFold.map((o) => y[o.entry]!), fit.outOfFold.map(() => 1), 3);
    for (const delta of again) expect(Math.abs(delta)).toBeLessThan(1e-5);
    for (const o of fit.outOfFold) expect(o.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    head.dispose();
  });
});

describe('the quadratic (invariance) penalty', () => {
  it('is ½·Σ_c w_cᵀ S w_c, with its gradient (central differences)', () => {
    const p = problem(11, 12, 3, 3);
    const rng = createRng(12);
    // S = mean of δδᵀ over two changes: the penalty is half the mean squared change of the logits.
    const deltas = [[0.5, -1, 0.25], [2, 0.1, -0.3]];
    const quadratic = new Float64Array(9);
    for (const delta of deltas) for (let j = 0; j < 3; j++) for (let l = 0; l < 3; l++) quadratic[j * 3 + l]! += (delta[j]! * delta[l]!) / deltas.length;
    const theta = Float64Array.from({ length: 3 * 3 + 3 }, () => rng.normal() * 0.3);
    const plain = logisticObjective(p, 0.7, theta).value;
    const withPenalty = logisticObjective(p, 0.7, theta, quadratic);
    let logitChange = 0;
    for (const delta of deltas) for (let c = 0; c < 3; c++) logitChange += (delta[0]! * theta[c]! + delta[1]! * theta[3 + c]! + delta[2]! * theta[6 + c]!) ** 2 / deltas.length;
    expect(withPenalty.value - plain).toBeCloseTo(0.5 * logitChange, 10);
    expectCentralDifferences((t) => logisticObjective(p, 0.7, t, quadratic), theta);
    expect(() => logisticObjective(p, 0.7, theta, new Float64Array(4))).toThrow(/4 values, expected 3×3/);
  });
});

describe('fitting with a quadratic penalty (by a change of variables)', () => {
  it('reaches the optimum of the penalised objective itself: a vanishing gradient, warm-started or not', async () => {
    const { cholesky } = await import('../../src/train/logistic.js');
    const p = problem(13, 50, 4, 3);
    const rng = createRng(14);
    // S = mean of δδᵀ over 30 random changes, strongest along feature 0.
    const quadratic = new Float64Array(16);
    for (let t = 0; t < 30; t++) {
      const delta = [rng.normal() * 2, rng.normal() * 0.2, rng.normal() * 0.2, rng.normal() * 0.5];
      for (let j = 0; j < 4; j++) for (let l = 0; l < 4; l++) quadratic[j * 4 + l]! += (delta[j]! * delta[l]!) / 30;
    }
    const l = cholesky(Float64Array.from(quadratic, (v, i) => v + (i % 5 === 0 ? 0.05 : 0)), 4);
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        let product = 0;
        for (let q = 0; q < 4; q++) product += l[i * 4 + q]! * l[j * 4 + q]!;
        expect(product).toBeCloseTo(quadratic[i * 4 + j]! + (i === j ? 0.05 : 0), 10);
      }
    }
    for (const init of [undefined, fitLogistic(p, { l2: 1 })]) {
      const fit = fitLogistic(p, { l2: 0.05, quadratic, tolerance: 1e-9, ...(init ? { init } : {}) });
      const theta = new Float64Array([...fit.w, ...fit.b]);
      const { value, gradient } = logisticObjective(p, 0.05, theta, quadratic);
      // The fit stops on the gradient in V = Lᵀ·W; in W it is L times that (L's entries reach ~2 here).
      expect(Math.max(...gradient.map(Math.abs))).toBeLessThan(1e-5);
      expect(fit.objective).toBeCloseTo(value, 8);
    }
    expect(() => cholesky(new Float64Array([1, 2, 2, 1]), 2)).toThrow(/not positive definite/);
  });
});

describe('a logistic head with the invariance penalty', () => {
  // Two features tell the classes apart equally well; the views move feature 0 a lot and feature 1
  // not at all (feature 0 is what a codec or a resize changes). Four inner folds.
  async function setUp(weight: number | undefined) {
    const tfl = await import('@tensorflow/tfjs-layers');
    await (await import('../../src/engine/index.js')).initEngine();
    const { fitLogisticHead } = await import('../../src/train/logistic_head.js');
    const rng = createRng(31);
    const frames = 160;
    const views = 3;
    const d = 3;
    const n = frames * views;
    const x = new Float32Array(n * d);
    const y = new Int32Array(n);
    const group = new Int32Array(n);
    const base = new Int32Array(n).fill(-1);
    for (let f = 0; f < frames; f++) {
      const label = f % 2;
      const clean = [rng.normal() * 0.8 + (label ? 1 : -1), rng.normal() * 0.8 + (label ? 1 : -1), rng.normal()];
      for (let v = 0; v < views; v++) {
        const e = f * views + v;
        y[e] = label;
        group[e] = f % 4;
        if (v > 0) base[e] = f * views;
        x.set([clean[0]! + (v > 0 ? rng.normal() * 1.5 : 0), clean[1]!, clean[2]! + (v > 0 ? rng.normal() * 0.1 : 0)], e * d);
      }
    }
    const data = {
      x, n, d, y, group,
      weights: new Float64Array(n).fill(1),
      scored: Uint8Array.from(base, (b) => (b < 0 ? 1 : 0)),
      ...(weight === undefined ? {} : { invariance: { weight, base } }),
    };
    const input = tfl.input({ shape: [d] });
    const head = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 2, activation: 'softmax' }).apply(input) as ReturnType<typeof tfl.input> });
    const fit = fitLogisticHead(head, data, [0.01], 2);
    const kernel = head.getWeights()[0]!.dataSync();
    head.dispose();
    // The weight difference between the classes per feature: what the decision reads.
    return { fit, reliance: [0, 1, 2].map((j) => Math.abs(kernel[j * 2 + 1]! - kernel[j * 2]!)), data };
  }

  it('learns from the frames only and moves its weight off the feature the views change', async () => {
    const off = await setUp(0);
    const on = await setUp(30);
    expect(on.fit.invariance).toBe(30);
    // Weight 0: the frames alone decide, the views are not rows (feature 0 and 1 weigh alike).
    expect(off.reliance[0]! / off.reliance[1]!).toBeGreaterThan(0.6);
    // With the penalty feature 0 loses most of its weight and feature 1 carries the decision.
    expect(on.reliance[0]! / on.reliance[1]!).toBeLessThan(0.25 * (off.reliance[0]! / off.reliance[1]!));
    // The held-out frames' views flip less and move the probability less.
    const [gridOff, gridOn] = [off.fit.grid[0]!, on.fit.grid[0]!];
    expect(gridOn.innerViewFlipRate!).toBeLessThan(gridOff.innerViewFlipRate!);
    expect(gridOn.innerViewTopProbChange!).toBeLessThan(0.5 * gridOff.innerViewTopProbChange!);
    // Only frames are scored and calibrate: one out-of-fold prediction per frame.
    expect(on.fit.outOfFold).toHaveLength(on.data.n / 3);
    expect(on.fit.outOfFold.every((o) => on.data.invariance!.base[o.entry] === -1)).toBe(true);
  });

  it('without the penalty, views are rows of the fit', async () => {
    const rows = await setUp(undefined);
    const frameOnly = await setUp(0);
    // The views' noisy feature 0, as rows, weakens its tie to the class: it weighs less than with
    // the frames alone (but far from the penalty's effect), and there are no view statistics.
    expect(rows.fit.grid[0]!.innerViewFlipRate).toBeUndefined();
    expect(rows.reliance[0]! / rows.reliance[1]!).toBeLessThan(frameOnly.reliance[0]! / frameOnly.reliance[1]!);
    expect(rows.fit.outOfFold).toHaveLength(rows.data.n / 3);
  });
});
