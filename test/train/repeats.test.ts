// cv over several fold seeds: one cv per fold assignment, the frozen-backbone features computed
// once for all of them, and repeats.json holding each run's pooled figures and their mean ± std.
// Also the logistic head inside a fold: its penalty chosen on the training folds only.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { readPredictionsCsv } from '../../src/eval/csv.js';
import type { RepeatsSummary } from '../../src/eval/repeats.js';
import { runRepeatedCrossValidation } from '../../src/train/cv.js';
import { loadModel } from '../../src/infer/model_dir.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

let root: string;
let data: string;

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-repeats-'));
  process.env.POCOVID_CACHE = join(root, 'cache');
  data = join(root, 'data');
  await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 2, folds: 3, size: 40 });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('cv over fold seeds with a logistic head', () => {
  it('runs one cv per fold seed on shared features and summarises them', async () => {
    const out = join(root, 'run');
    const result = await runRepeatedCrossValidation(
      { data, model: 'mobilenet_v1', inputSize: [32, 32], head: 'logistic', trainableLayers: 0, augment: false, seed: 3, out, foldSeeds: [0, 7], penalties: [0.01, 1], classBias: 'fitted' },
      true,
    );
    expect(result.runs.map((r) => r.seed)).toEqual([0, 7]);
    // The tiny dataset records no fold seed (0 is its own): seed 0 runs on it, seed 7 on a refolded copy.
    expect(result.runs[0]!.out).toBe(join(out, 'seed-0'));
    expect(existsSync(join(out, 'datasets', 'seed-7', 'manifest.csv'))).toBe(true);
    // Seed 0's first fold computed every frame's features once; everything after reused them.
    const entries = result.runs.flatMap((r) => r.folds.map((f) => f.summary.featureEntries));
    expect(entries[0]!.reused).toBe(0);
    expect(entries.slice(1).every((e) => e.computed === 0)).toBe(true);
    for (const run of result.runs) {
      expect(readPredictionsCsv(run.predictions).rows).toHaveLength(36);
      for (const fold of run.folds) {
        // The penalty was chosen by holding out the other folds, never the test fold.
        const log = JSON.parse(readFileSync(join(run.out, `fold-${fold.fold}`, 'logistic.json'), 'utf8')) as { penalty: number; innerFolds: number[]; grid: { penalty: number }[]; classBias: number[] };
        expect(log.classBias).toHaveLength(3);
        expect(log.classBias[2]).toBe(0);
        expect(log.classBias.every(Number.isFinite)).toBe(true);
        expect(log.innerFolds).not.toContain(fold.fold);
        expect(log.innerFolds).toHaveLength(2);
        expect([0.01, 1]).toContain(log.penalty);
        expect(log.grid.map((g) => g.penalty)).toEqual([1, 0.01]);
      }
    }
    const summary = JSON.parse(readFileSync(join(out, 'repeats.json'), 'utf8')) as RepeatsSummary;
    expect(summary.seeds).toEqual([0, 7]);
    const mean = (summary.repeats[0]!.videoBalancedAccuracy + summary.repeats[1]!.videoBalancedAccuracy) / 2;
    expect(summary.mean.videoBalancedAccuracy).toBeCloseTo(mean, 12);
    expect(summary.std.videoBalancedAccuracy).toBeCloseTo(Math.abs(summary.repeats[0]!.videoBalancedAccuracy - mean), 12);
    expect(readFileSync(join(out, 'repeats.md'), 'utf8')).toContain('| mean ± std |');
    // The refit: trained once more on every frame with the folds' median penalty, and the run's model.
    const chosen = result.runs.flatMap((r) => r.folds.map((f) => (JSON.parse(readFileSync(join(r.out, `fold-${f.fold}`, 'logistic.json'), 'utf8')) as { penalty: number }).penalty)).sort((a, b) => a - b);
    expect(result.refit!.penalty).toBe(chosen[Math.ceil((chosen.length - 1) / 2)]);
    const refitLog = JSON.parse(readFileSync(join(out, 'refit', 'logistic.json'), 'utf8')) as { penalty: number; grid: unknown[] };
    expect(refitLog.penalty).toBe(result.refit!.penalty);
    expect(refitLog.grid).toHaveLength(1);
    const model = await loadModel(out);
    expect(model.path).toBe(join(out, 'refit', 'model'));
    expect(model.meta.guard?.fittedOn).toBe(36);
    model.members.forEach((m) => m.dispose());
    // A fold is still there for the asking, and the folds' ensemble of a seed's run.
    const fold = await loadModel(result.runs[0]!.out, 1);
    expect(fold.meta.source).toMatchObject({ folds: [1] });
    fold.members.forEach((m) => m.dispose());
  });
});
