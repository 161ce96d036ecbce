// MC dropout and class visualisation: seeded, dropout-only stochasticity, grey updates.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { visualiseClass } from '../../src/explain/class_vis.js';
import { deterministicFrontier, forwardWith } from '../../src/explain/graph.js';
import { mcDropout, videoMcDropout } from '../../src/explain/uncertainty.js';
import { createRng } from '../../src/util/rng.js';
import { HALF, regionCfg, regionInputs, regionModel, SIZE } from './region_model.js';

beforeAll(async () => {
  await initEngine();
});

describe('mcDropout', () => {
  it('with dropout rate 0 every pass equals model.predict (BatchNorm stays in inference mode): std 0', () => {
    const model = regionModel({ dropout: 0, batchNorm: true });
    const x = tf.tensor4d(regionInputs(4), [4, SIZE, SIZE, 3]);
    const predicted = tf.tidy(() => (model.predict(x) as tf.Tensor).arraySync() as number[][]);
    // Batch statistics would give other outputs: check that the fixture can tell the modes apart.
    const batchMode = tf.tidy(() => (model.apply(x, { training: true }) as tf.Tensor).arraySync() as number[][]);
    expect(Math.abs(batchMode[0]![0]! - predicted[0]![0]!)).toBeGreaterThan(0.05);
    const before = tf.memory().numTensors;
    const result = mcDropout(model, x, 5, createRng(3));
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    expect(result.samples).toHaveLength(5);
    result.mean.forEach((m, i) => m.forEach((v, k) => expect(v).toBeCloseTo(predicted[i]![k]!, 5)));
    for (const s of result.std.flat()) expect(s).toBeLessThan(1e-6);
    expect(result.predictedStd.every((s) => s < 1e-6)).toBe(true);
  });

  it('with dropout the passes differ (std > 0) and a seed repeats the result', () => {
    const model = regionModel({ dropout: 0.5, batchNorm: true });
    const x = tf.tensor4d(regionInputs(3), [3, SIZE, SIZE, 3]);
    const a = mcDropout(model, x, 20, createRng(7));
    const b = mcDropout(model, x, 20, createRng(7));
    const c = mcDropout(model, x, 20, createRng(8));
    x.dispose();
    expect(a.samples).toEqual(b.samples);
    expect(a.samples).not.toEqual(c.samples);
    expect(Math.max(...a.std.flat())).toBeGreaterThan(0.01);
    for (const m of a.mean) expect(m[0]! + m[1]!).toBeCloseTo(1, 5);
    const video = videoMcDropout(a, [0, 1, 2]);
    expect(video.mean[0]).toBeCloseTo((a.mean[0]![0]! + a.mean[1]![0]! + a.mean[2]![0]!) / 3, 6);
    // Averaging frames inside each pass can only shrink the spread relative to the mean frame std.
    expect(video.std[0]!).toBeLessThanOrEqual((a.std[0]![0]! + a.std[1]![0]! + a.std[2]![0]!) / 3 + 1e-9);
  });

  it('passes reuse the layers before the first Dropout: with them given, the rest reproduces model.predict', () => {
    const model = regionModel({ dropout: 0.5, batchNorm: true });
    const x = tf.tensor4d(regionInputs(2), [2, SIZE, SIZE, 3]);
    const before = tf.memory().numTensors;
    const known = deterministicFrontier(model, x, (layer) => layer.getClassName() === 'Dropout');
    // BN's output is what the Dropout reads: the only tensor needed.
    expect(known.size).toBe(1);
    const viaFrontier = tf.tidy(() => forwardWith(model, x, () => undefined, known).arraySync() as number[][]);
    for (const t of known.values()) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const predicted = tf.tidy(() => (model.predict(x) as tf.Tensor).arraySync() as number[][]);
    x.dispose();
    viaFrontier.forEach((row, i) => row.forEach((v, k) => expect(v).toBeCloseTo(predicted[i]![k]!, 6)));
  });

  it('rejects a bad number of passes', () => {
    const model = regionModel({ dropout: 0.5 });
    const x = tf.zeros([1, SIZE, SIZE, 3]);
    expect(() => mcDropout(model, x, 0, createRng(1))).toThrow(/positive whole number of passes, got 0/);
    x.dispose();
  });
});

describe('visualiseClass', () => {
  const isGrey = (p: Float32Array): boolean => {
    for (let i = 0; i < p.length; i += 3) if (p[i] !== p[i + 1] || p[i] !== p[i + 2]) return false;
    return true;
  };

  it('keeps every update grey, raises the class score, brightens only the region the model reads, is seeded and leaks nothing', () => {
    const model = regionModel({ dropout: 0.5 });
    const cfg = regionCfg();
    const greyAfterEveryStep: boolean[] = [];
    const before = tf.memory().numTensors;
    const result = visualiseClass(model, cfg, 0, { steps: 12, rng: createRng(5), onStep: (_, p) => greyAfterEveryStep.push(isGrey(p)) });
    expect(tf.memory().numTensors).toBe(before);
    expect(greyAfterEveryStep).toEqual(new Array(12).fill(true));
    expect(result.rgb.length).toBe(SIZE * SIZE * 3);
    expect(result.scores.at(-1)!).toBeGreaterThan(result.scores[0]!);
    let inside = 0;
    let outside = 0;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        // Away from the quadrant's border, where the blur and jitter mix the two regions.
        const v = result.rgb[(y * SIZE + x) * 3]!;
        if (y < HALF - 2 && x < HALF - 2) inside += v / 36;
        else if (y >= HALF + 2 || x >= HALF + 2) outside += v / (SIZE * SIZE - 100);
      }
    }
    expect(inside).toBeGreaterThan(outside + 40);
    const again = visualiseClass(model, cfg, 0, { steps: 12, rng: createRng(5) });
    expect(Array.from(again.rgb)).toEqual(Array.from(result.rgb));
  });

  it('--color lets the channels move apart (the model weighs R, G and B differently)', () => {
    const model = regionModel({ dropout: 0.5 });
    const result = visualiseClass(model, regionCfg(), 0, { steps: 8, rng: createRng(5), color: true });
    let differ = 0;
    for (let i = 0; i < result.rgb.length; i += 3) if (result.rgb[i] !== result.rgb[i + 2]) differ++;
    expect(differ).toBeGreaterThan(10);
  });

  it('works for a one-channel (grey) model through its luma preprocessing', () => {
    const model = regionModel({ channels: 1 });
    const result = visualiseClass(model, regionCfg(1), 1, { steps: 4, rng: createRng(2) });
    expect(result.scores.at(-1)!).toBeGreaterThan(result.scores[0]!);
  });
});
