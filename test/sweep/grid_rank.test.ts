// The sweep's grid file (every combination, named recipes, errors naming the file and the recipe),
// its ranking (by the folds' validation score only, never the test folds' figures) and the
// command line it prints for the best recipe.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { trainCommandLine } from '../../src/cli/recipe_command.js';
import { readGrid } from '../../src/sweep/grid.js';
import { rankRecipes, type RecipeOutcome } from '../../src/sweep/rank.js';
import type { RepeatFigures } from '../../src/eval/repeats.js';

const root = mkdtempSync(join(tmpdir(), 'pocovid-grid-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const base = { data: '/d', model: 'grayscale_cnn', out: '/s' };
let n = 0;
function gridFile(content: unknown): string {
  const file = join(root, `grid-${n++}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('readGrid', () => {
  it('gives every combination of "grid" in file order, then the listed recipes; CLI names are accepted', () => {
    const file = gridFile({ grid: { colour: ['rgb', 'grey'], 'class-weights': ['none', 'source'] }, recipes: [{ name: 'logistic', head: 'logistic', '--trainable-layers': 0 }, { lr: 0.001, patience: 3 }] });
    expect(readGrid(file, base)).toEqual([
      { name: 'colour-rgb_class-weights-none', overrides: { colour: 'rgb', classWeights: 'none' } },
      { name: 'colour-rgb_class-weights-source', overrides: { colour: 'rgb', classWeights: 'source' } },
      { name: 'colour-grey_class-weights-none', overrides: { colour: 'grey', classWeights: 'none' } },
      { name: 'colour-grey_class-weights-source', overrides: { colour: 'grey', classWeights: 'source' } },
      { name: 'logistic', overrides: { head: 'logistic', trainableLayers: 0 } },
      { name: 'lr-0.001_early-stopping-patience-3', overrides: { lr: 0.001, earlyStoppingPatience: 3 } },
    ]);
  });

  it('refuses a bad grid with the file, the recipe and the problem', () => {
    const cases: [unknown, RegExp][] = [
      ['{"grid": ', /grid-\d+\.json/],
      [[1, 2], /a sweep grid is a JSON object/],
      [{ grids: {} }, /unknown field\(s\) "grids"/],
      [{ grid: { colour: ['rgb'], colur: ['grey'] } }, /grid: unknown option "colur"; a recipe may set .*colour/],
      [{ grid: { data: ['/a', '/b'] } }, /grid: "data" cannot vary within a sweep/],
      [{ recipes: [{ name: 'x', out: '/elsewhere' }] }, /recipes\[0\]: "out" cannot vary within a sweep/],
      [{ grid: { colour: [] } }, /grid: "colour" must be a non-empty list of values/],
      [{ grid: { colour: 'grey' } }, /grid: "colour" must be a non-empty list of values/],
      [{ grid: { colour: ['grey'] }, recipes: [{ name: 'colour-grey', lr: 1 }] }, /two recipes are named "colour-grey" \(the 1\. and the 2\.\)/],
      [{ recipes: [{ name: '../up', lr: 1 }] }, /recipes\[0\]: name "\.\.\/up" must be letters/],
      [{ recipes: [{ lr: 0.1, learningRate: 2 }] }, /unknown option "learningRate"/],
      [{ recipes: [{ name: 'bad', colour: 'blue' }] }, /recipe "bad": colour: /],
      [{ recipes: [{ name: 'twice', 'batch-size': 4, batchSize: 8 }] }, /recipes\[0\]: "batchSize" is given twice/],
      [{}, /no recipe: give "grid"/],
    ];
    for (const [content, message] of cases) {
      const file = gridFile(content);
      let error: Error | undefined;
      try {
        readGrid(file, base);
      } catch (err) {
        error = err as Error;
      }
      expect(error?.message, JSON.stringify(content)).toMatch(message);
      expect(error!.message).toContain(file);
    }
  });
});

const figures = (bal: number): RepeatFigures => ({ frameBalancedAccuracy: bal, videoBalancedAccuracy: bal }) as unknown as RepeatFigures;
const outcome = (name: string, scores: number[], testBal: number): RecipeOutcome => ({
  name,
  overrides: {},
  out: `/s/recipes/${name}`,
  folds: scores.map((score, fold) => ({ run: `/s/recipes/${name}`, seed: 0, fold, score, selection: 'validation split' })),
  test: figures(testBal),
});

describe('rankRecipes', () => {
  it('ranks by the mean validation score over folds, whatever the test folds say; ties go to the smaller spread', () => {
    const ranked = rankRecipes([
      outcome('best-on-test', [0.5, 0.6, 0.7], 0.99),
      outcome('best-on-validation', [0.9, 0.8, 1.0], 0.4),
      outcome('steady', [0.6, 0.6, 0.6], 0.5),
      outcome('failed', [], 1),
      { ...outcome('errored', [1, 1, 1], 1), error: 'recipe "errored": out of memory' },
      outcome('no-score', [0.9, Number.NaN, 0.9], 1),
    ]);
    expect(ranked.map((r) => [r.name, r.rank])).toEqual([
      ['best-on-validation', 1],
      ['steady', 2],
      ['best-on-test', 3],
      ['failed', undefined],
      ['errored', undefined],
      ['no-score', undefined],
    ]);
    expect(ranked[0]!.score).toBeCloseTo(0.9, 12);
    expect(ranked[0]!.std).toBeCloseTo(Math.sqrt(2 / 300), 12);
    expect(ranked[1]!.std).toBeCloseTo(0, 12);
    expect(ranked.slice(3).map((r) => r.error)).toEqual(['no fold finished', 'recipe "errored": out of memory', 'no validation score for fold 1']);
  });
});

describe('trainCommandLine', () => {
  it('spells the options that differ from the defaults with the CLI flags; config-only ones apart', () => {
    const spelled = trainCommandLine('cv', { ...base, out: '/runs/my run', colour: 'grey', augment: false, inputSize: [32, 40], penalties: [0.1, 1], earlyStoppingPatience: 5, plateauPatience: 3, epochs: 40, classes: ['covid', 'regular'] });
    expect(spelled.line).toBe("pocovid cv --data /d --model grayscale_cnn --out '/runs/my run' --augment off --penalties 0.1,1 --colour grey --patience 5 --classes covid,regular --input-size 32x40");
    expect(spelled.notExpressible).toEqual(['plateauPatience=3']);
    expect(trainCommandLine('cv', base, ['--fold-seeds', '0,1', '--feature-dir', "/shared/it's here"]).line).toBe(
      "pocovid cv --data /d --model grayscale_cnn --out /s --fold-seeds 0,1 --feature-dir '/shared/it'\\''s here'",
    );
  });
});
