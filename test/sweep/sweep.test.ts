// `pocovid sweep` end to end on a tiny phantom dataset with grayscale_cnn: a grid of recipes, each a
// cv, ranked by the validation score of its folds' own model selection (read back from each fold's
// result.json, never from the test folds), a failing recipe reported without stopping the others,
// a re-run that keeps every finished fold, a changed grid refused, and the same sweep with its folds
// on a Redis queue (one `pocovid worker`) giving the same predictions and scores as the local one.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditBeforeCrossValidation } from '../../src/cli/leakage_gate.js';
import { initEngine } from '../../src/engine/index.js';
import { openQueueExecutor } from '../../src/queue/executor.js';
import { runSweep, type SweepOptions } from '../../src/sweep/sweep.js';
import type { SweepSummary } from '../../src/sweep/report.js';
import { createProgress } from '../../src/train/progress.js';
import { startCli, type CliProcess } from '../helpers/cli_process.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

let root: string;
let data: string;
let cache: string;
let grid: string;
const children: CliProcess[] = [];
let redis: RedisServer | undefined;

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-sweep-'));
  cache = join(root, 'cache');
  process.env['POCOVID_CACHE'] = cache;
  data = join(root, 'data');
  await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 2, folds: 3, size: 32 });
  grid = join(root, 'grid.json');
  writeFileSync(
    grid,
    JSON.stringify({
      grid: { lr: [0.01, 0.0003] },
      recipes: [
        { name: 'logistic', head: 'logistic', 'trainable-layers': 0 },
        // A logistic head on a backbone that still trains: refused by the trainer, at its first fold.
        { name: 'broken', head: 'logistic' },
      ],
    }),
  );
});

afterAll(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

// No dropout (TF.js draws its masks unseeded): the same seed gives the same weights wherever a fold runs.
const BASE = { data: '', model: 'grayscale_cnn', inputSize: [32, 32] as [number, number], batchSize: 8, seed: 3, dropout: 0, epochs: 3, views: 1, runtime: 'tfjs' as const };
const CLI_BASE = ['--model', 'grayscale_cnn', '--input-size', '32', '--batch-size', '8', '--seed', '3', '--dropout', '0', '--epochs', '3', '--views', '1', '--runtime', 'tfjs'];
const sweepOptions = (out: string, gridFile = grid): SweepOptions => ({ base: { ...BASE, data, out }, grid: gridFile });
const RECIPES = ['lr-0.01', 'lr-0.0003', 'logistic'];
const readSummary = (out: string): SweepSummary => JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8'));
const foldResult = (out: string, recipe: string, fold: number) => join(out, 'recipes', recipe, `fold-${fold}`, 'result.json');

describe('pocovid sweep', () => {
  const local = () => join(root, 'local');

  it('runs every recipe as a cv and ranks them by their folds\' validation score; a failing recipe is reported, the rest go on', async () => {
    const cli = startCli(['sweep', '--data', data, '--grid', grid, '--out', local(), ...CLI_BASE, '--quiet'], { cache });
    children.push(cli);
    expect(await cli.exited, cli.output()).toBe(3);
    const summary = readSummary(local());
    const ranked = summary.recipes.filter((r) => r.rank !== undefined);
    expect(ranked.map((r) => r.name).sort()).toEqual([...RECIPES].sort());
    expect(ranked.map((r) => r.rank)).toEqual([1, 2, 3]);
    for (const recipe of ranked) {
      // The score is the mean of what each fold's own model selection saw, read from its result.json.
      const perFold = [0, 1, 2].map((k) => JSON.parse(readFileSync(foldResult(local(), recipe.name, k), 'utf8')).bestValBalancedAccuracy as number);
      expect(recipe.folds.map((f) => f.score)).toEqual(perFold);
      expect(recipe.score).toBeCloseTo(perFold.reduce((a, b) => a + b, 0) / 3, 12);
      expect(new Set(recipe.folds.map((f) => f.selection))).toEqual(new Set([recipe.name === 'logistic' ? 'training folds held out in turn' : 'validation split']));
      expect(existsSync(join(recipe.out, 'predictions.csv'))).toBe(true);
      expect(existsSync(join(recipe.out, 'refit'))).toBe(false);
    }
    for (let i = 1; i < ranked.length; i++) expect(ranked[i - 1]!.score!).toBeGreaterThanOrEqual(ranked[i]!.score!);
    const broken = summary.recipes.find((r) => r.name === 'broken')!;
    expect(broken.rank).toBeUndefined();
    expect(broken.error).toMatch(/a logistic head needs the frozen-feature cache/);

    const markdown = readFileSync(join(local(), 'sweep.md'), 'utf8');
    expect(markdown).toContain('Ranked by validation balanced accuracy: per fold, the balanced accuracy its own model selection saw');
    expect(markdown).toContain('the test folds never enter it');
    expect(markdown).toMatch(/## Not ranked\n\n- \*\*broken\*\*: .*a logistic head needs the frozen-feature cache/);
    const best = ranked[0]!;
    expect(summary.best?.name).toBe(best.name);
    expect(summary.best!.command).toMatch(new RegExp(`^pocovid cv --data ${data} --model grayscale_cnn --out ${local()}/recipes/${best.name} .*--input-size 32x32 .*--feature-dir ${local()}/features$`));
    expect(markdown).toContain(summary.best!.command);
    expect(cli.output()).toContain(`1. ${best.name}: validation bal. acc. ${best.score!.toFixed(3)} ± ${best.std!.toFixed(3)}`);
    expect(cli.output()).toMatch(/- broken: not ranked: .*a logistic head needs/);
    expect(cli.output()).toContain(`pocovid sweep: 1 recipe(s) not ranked (see ${join(local(), 'sweep.md')})`);
    // The recipes share one frozen-feature folder (the logistic head's features went there).
    expect(existsSync(join(local(), 'features'))).toBe(true);
  }, 900_000);

  it('run again, keeps every finished fold, and ranks by what the folds\' result.json say', async () => {
    const before = readSummary(local());
    const files = RECIPES.flatMap((r) => [0, 1, 2].map((k) => foldResult(local(), r, k)));
    const mtimes = files.map((f) => statSync(f).mtimeMs);
    // The last-ranked recipe's folds are made to have seen a perfect validation split: it must now rank first.
    const last = before.recipes.filter((r) => r.rank !== undefined).at(-1)!;
    for (const k of [0, 1, 2]) {
      const file = foldResult(local(), last.name, k);
      writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), bestValBalancedAccuracy: 1 }));
    }
    const result = await runSweep(sweepOptions(local()), true);
    const ranked = result.summary.recipes.filter((r) => r.rank !== undefined);
    expect(ranked[0]!.name).toBe(last.name);
    expect(ranked[0]!.score).toBe(1);
    // The test folds' figures did not move: nothing was trained again.
    expect(ranked[0]!.test).toEqual(last.test);
    expect(files.filter((f) => !f.includes(`/${last.name}/`)).map((f) => statSync(f).mtimeMs)).toEqual(mtimes.filter((_, i) => !files[i]!.includes(`/${last.name}/`)));
  }, 900_000);

  it('refuses a recipe folder made for other options before training anything', async () => {
    const changed = join(root, 'changed.json');
    writeFileSync(changed, JSON.stringify({ recipes: [{ name: 'logistic', head: 'logistic', 'trainable-layers': 0, penalties: [0.5] }, { name: 'new-one', lr: 0.1 }] }));
    await expect(runSweep(sweepOptions(local(), changed), true)).rejects.toThrow(
      `${join(local(), 'recipes', 'logistic')}: made for other options than this sweep's recipe of that name`,
    );
    expect(existsSync(join(local(), 'recipes', 'new-one'))).toBe(false);
  });

  it('audits the dataset once before anything trains and refuses a leaking one', async () => {
    const leaky = join(root, 'leaky-data');
    cpSync(data, leaky, { recursive: true });
    // One frame of a fold-0 patient moved to fold 1: that patient is now in two folds.
    const lines = readFileSync(join(leaky, 'manifest.csv'), 'utf8').split('\n');
    const moved = lines.findIndex((l) => l.includes(',covid-0,') && l.endsWith(',0'));
    lines[moved] = lines[moved]!.replace(/,0$/, ',1');
    writeFileSync(join(leaky, 'manifest.csv'), lines.join('\n'));
    const info = JSON.parse(readFileSync(join(leaky, 'dataset.json'), 'utf8'));
    info.counts.perFold['0'].covid -= 1;
    info.counts.perFold['1'].covid += 1;
    writeFileSync(join(leaky, 'dataset.json'), JSON.stringify(info));
    const out = join(root, 'leaky-sweep');
    const options = { ...sweepOptions(out), base: { ...sweepOptions(out).base, data: leaky } };
    await expect(runSweep(options, true, { checkDataset: (d, o) => auditBeforeCrossValidation(d, o, false, true) })).rejects.toThrow(/the folds leak, so cross-validation would report optimistic results[\s\S]*patient covid-0: folds 0, 1/);
    expect(JSON.parse(readFileSync(join(out, 'audit.json'), 'utf8'))).toMatchObject({ leaking: true, allowLeakage: false });
    expect(existsSync(join(out, 'config.json'))).toBe(false);
    expect(existsSync(join(out, 'recipes'))).toBe(false);
    // The clean dataset passes, audited once for the whole sweep (not once per recipe).
    let audits = 0;
    await runSweep(sweepOptions(local()), true, { checkDataset: async (d, o) => (audits++, auditBeforeCrossValidation(d, o, false, true)) });
    expect(audits).toBe(1);
    expect(JSON.parse(readFileSync(join(local(), 'audit.json'), 'utf8')).leaking).toBe(false);
  });

  it('with its folds on a Redis queue (one worker), gives the same predictions and scores as the local sweep', async () => {
    redis = await startRedis();
    const queued = join(root, 'queued');
    const worker = startCli(['worker', '--queue', redis.url, '--name', 'w1'], { cache });
    children.push(worker);
    await worker.waitFor(/taking jobs/);
    const executor = await openQueueExecutor({ url: redis.url, featureDir: join(queued, 'features'), progress: createProgress(process.stderr, true), pollMs: 200 });
    try {
      const localGrid = join(root, 'good.json');
      writeFileSync(localGrid, JSON.stringify({ grid: { lr: [0.01, 0.0003] }, recipes: [{ name: 'logistic', head: 'logistic', 'trainable-layers': 0 }] }));
      const result = await runSweep(sweepOptions(queued, localGrid), true, { executor });
      expect(result.failed).toEqual([]);
      for (const name of RECIPES) {
        expect(readFileSync(join(queued, 'recipes', name, 'predictions.csv'), 'utf8'), name).toBe(readFileSync(join(local(), 'recipes', name, 'predictions.csv'), 'utf8'));
      }
      // Scores as the local run's folds recorded them (the test above edited one recipe's; compare the others).
      const localSummary = readSummary(local());
      for (const recipe of result.summary.recipes) {
        const mine = localSummary.recipes.find((r) => r.name === recipe.name)!;
        if (mine.score === 1) continue;
        expect(recipe.folds.map((f) => f.score)).toEqual(mine.folds.map((f) => f.score));
      }
      expect(worker.output()).toMatch(/fold 3\/3 of logistic\/fold-2: started/);
    } finally {
      await executor.close();
    }
  }, 900_000);
});
