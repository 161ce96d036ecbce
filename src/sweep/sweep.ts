// `pocovid sweep`: a grid of recipes (grid.ts), each a cross-validation of its own in
// <out>/recipes/<name>, ranked by the validation score of their folds (rank.ts), with sweep.md and
// sweep.json (report.ts). Locally the recipes run one after another; with a queue executor every
// recipe's folds go on the queue at once, so workers on several machines share the whole grid.
// The recipes share one folder of frozen features (<out>/features unless told otherwise): recipes
// that differ only after the frozen backbone (the head, class weights...) compute it once.
// Run again, a sweep keeps every finished fold and pools again; a recipe folder made for other
// options is refused rather than mixed.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PocovidError } from '../errors.js';
import { repeatFigures, type RepeatFigures } from '../eval/repeats.js';
import { runRepeatedCrossValidation, type CvOptions, type DatasetCheck, type RepeatedCvResult } from '../train/cv.js';
import { createDiskFeatureStore } from '../train/feature_disk.js';
import { localExecutor, type FoldExecutor } from '../train/fold_executor.js';
import { createProgress } from '../train/progress.js';
import { trainConfigSchema, type TrainConfigInput } from '../train/config.js';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic.js';
import { readJsonFile } from '../util/json_file.js';
import { readGrid, type Recipe } from './grid.js';
import { rankRecipes, RANKING_METRIC, type FoldScore, type RecipeOutcome } from './rank.js';
import { sweepMarkdown, type SweepSummary } from './report.js';

export interface SweepOptions {
  /** The base recipe (the command line's cv options); `out` is the sweep's folder. */
  base: CvOptions;
  /** The grid file (see grid.ts). */
  grid: string;
  /** For the record in config.json (the queue's address, password hidden). */
  queue?: string;
  /** Spells a recipe as the cv command that trains it (the CLI's option names). */
  commandLine?: (options: Omit<TrainConfigInput, 'fold'>, extra: string[]) => { line: string; notExpressible: string[] };
}

export interface SweepResult {
  out: string;
  summary: SweepSummary;
  markdown: string;
  json: string;
  /** Recipes that failed (their errors are in sweep.md too). */
  failed: { name: string; error: string }[];
}

export const RECIPES_DIR = 'recipes';
const RECIPE_FILE = 'recipe.json';

/** The options a recipe's cv runs with. */
function recipeOptions(base: CvOptions, recipe: Recipe, out: string, featureDir: string): CvOptions {
  // No refit per recipe: the sweep chooses first; the chosen recipe's cv trains its refit.
  return { ...base, ...recipe.overrides, out: join(out, RECIPES_DIR, recipe.name), refit: false, featureDir } as CvOptions;
}

/**
 * What a recipe folder is made for: the resolved training config (defaults filled in, so the CLI
 * and a library call that mean the same compare equal) and the cv's own choices. Where the frozen
 * features are kept and where the folder is do not change a result and are left out.
 */
function recipeRecord(recipe: Recipe, cv: CvOptions): object {
  const { folds, foldSeeds, ensembleAggregation, refit: _r, featureDir: _d, ...train } = cv;
  const { out: _o, fold: _f, ...resolved } = trainConfigSchema.parse({ ...train, fold: 0 });
  return { name: recipe.name, overrides: recipe.overrides, train: resolved, folds: folds ?? null, foldSeeds: foldSeeds ?? null, ensembleAggregation: ensembleAggregation ?? 'mean' };
}

/** Refuses a recipe folder written for other options (the grid or the command line changed). */
function claimRecipeDir(dir: string, record: object): void {
  const file = join(dir, RECIPE_FILE);
  if (existsSync(file)) {
    const before = readJsonFile<object>(file, { what: 'the recipe a sweep folder was made for', hint: 'delete the recipe folder to run it again' });
    if (JSON.stringify(before) !== JSON.stringify(record)) {
      throw new PocovidError(`${dir}: made for other options than this sweep's recipe of that name (${file}); write the sweep to another --out, or delete that folder to run the recipe again`);
    }
    return;
  }
  writeJsonAtomicSync(file, record);
}

function outcomeOf(recipe: Recipe, dir: string, result: RepeatedCvResult, logistic: boolean): RecipeOutcome {
  const folds: FoldScore[] = result.runs.flatMap((run) =>
    run.folds.map((f) => ({ run: run.out, seed: run.seed, fold: f.fold, score: f.summary.bestValBalancedAccuracy, selection: logistic ? ('training folds held out in turn' as const) : ('validation split' as const) })),
  );
  const figures = result.repeats?.summary.mean ?? result.runs[0]?.figures;
  return {
    name: recipe.name,
    overrides: recipe.overrides,
    out: dir,
    folds,
    ...(figures ? { test: figures as RepeatFigures } : {}),
    report: result.repeats?.markdown ?? result.runs[0]?.report,
    wallSeconds: result.wallSeconds,
  };
}

/**
 * `shared.checkDataset` (the CLI's leakage audit) runs once on the sweep's dataset, into
 * <out>/audit.json, before anything trains: a leaking dataset stops the whole sweep. The recipes'
 * own cvs then check only the datasets they refold (--fold-seeds), each into its own folder.
 */
export async function runSweep(options: SweepOptions, quiet = false, shared: { executor?: FoldExecutor; checkDataset?: DatasetCheck } = {}): Promise<SweepResult> {
  const started = Date.now();
  const out = resolve(options.base.out);
  const progress = createProgress(process.stderr, quiet);
  const { out: _o, ...base } = options.base;
  const recipes = readGrid(options.grid, { ...base, out });
  const featureDir = resolve(options.base.featureDir ?? join(out, 'features'));
  await shared.checkDataset?.(options.base.data, out);
  writeJsonAtomicSync(join(out, 'config.json'), {
    kind: 'sweep',
    out,
    grid: resolve(options.grid),
    gridContent: readJsonFile(options.grid),
    base: { ...base, featureDir },
    recipes,
    ...(options.queue ? { queue: options.queue } : {}),
    metric: RANKING_METRIC,
  });
  const checkRefolded: DatasetCheck | undefined = shared.checkDataset && ((data, runOut) => (resolve(data) === resolve(options.base.data) ? Promise.resolve() : shared.checkDataset!(data, runOut)));
  const planned = recipes.map((recipe) => ({ recipe, options: recipeOptions(options.base, recipe, out, featureDir) }));
  // Every folder is checked before anything trains: a changed grid fails at once, not half-way.
  for (const { recipe, options: cv } of planned) claimRecipeDir(cv.out, recipeRecord(recipe, cv));
  progress.log(`sweep: ${recipes.length} recipe(s) into ${join(out, RECIPES_DIR)}${shared.executor ? ' (folds on the queue)' : ''}`);

  const executor = shared.executor ?? localExecutor(createDiskFeatureStore(featureDir), progress, quiet);
  const runOne = async ({ recipe, options: cv }: (typeof planned)[number]): Promise<RecipeOutcome> => {
    try {
      progress.log(`recipe ${recipe.name}`);
      const result = await runRepeatedCrossValidation(cv, quiet, { executor, ...(checkRefolded ? { checkDataset: checkRefolded } : {}) });
      return outcomeOf(recipe, cv.out, result, cv.head === 'logistic');
    } catch (err) {
      if (!(err instanceof PocovidError)) throw err;
      progress.log(`recipe ${recipe.name} failed: ${err.message}`);
      return { name: recipe.name, overrides: recipe.overrides, out: cv.out, folds: [], error: err.message };
    }
  };
  // On a queue every recipe's folds are submitted at once; here they run one after another.
  const outcomes = shared.executor ? await Promise.all(planned.map(runOne)) : [];
  if (!shared.executor) for (const item of planned) outcomes.push(await runOne(item));

  const ranked = rankRecipes(outcomes);
  const winner = ranked.find((r) => r.rank === 1);
  const winnerOptions = winner && planned.find((p) => p.recipe.name === winner.name)!.options;
  let best: SweepSummary['best'];
  if (winner && winnerOptions && options.commandLine) {
    const { folds: _f, foldSeeds: _s, ensembleAggregation: _a, refit: _r, featureDir: _d, ...train } = winnerOptions;
    // The cv's own options, and the sweep's feature folder so that the refit reuses its features.
    const extra = [
      ...(winnerOptions.folds ? ['--folds', winnerOptions.folds.join(',')] : []),
      ...(winnerOptions.foldSeeds ? ['--fold-seeds', winnerOptions.foldSeeds.join(',')] : []),
      ...(winnerOptions.ensembleAggregation && winnerOptions.ensembleAggregation !== 'mean' ? ['--ensemble', winnerOptions.ensembleAggregation] : []),
      '--feature-dir',
      featureDir,
    ];
    const spelled = options.commandLine(train, extra);
    best = { name: winner.name, command: spelled.line, notExpressible: spelled.notExpressible };
  }
  const summary: SweepSummary = {
    data: resolve(options.base.data),
    model: options.base.model,
    grid: resolve(options.grid),
    metric: RANKING_METRIC,
    recipes: ranked,
    ...(best ? { best } : {}),
    wallSeconds: (Date.now() - started) / 1000,
  };
  const json = join(out, 'sweep.json');
  const markdown = join(out, 'sweep.md');
  writeJsonAtomicSync(json, summary);
  writeFileAtomicSync(markdown, sweepMarkdown(summary, out));
  return { out, summary, json, markdown, failed: ranked.filter((r) => r.error).map((r) => ({ name: r.name, error: r.error! })) };
}
