// sweep.md and sweep.json: the recipes ranked by their validation score (rank.ts), each with its
// options, its folds' scores, the test folds' pooled figures for the record, and its report.
import { relative } from 'node:path';
import { RANKING_METRIC, type RankedRecipe } from './rank.js';

export interface SweepSummary {
  data: string;
  model: string;
  grid: string;
  metric: string;
  recipes: RankedRecipe[];
  /** How to train the best recipe as a cv of its own (with its refit), when one has a score. */
  best?: { name: string; command: string; notExpressible: string[] };
  wallSeconds: number;
}

const f3 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(3));
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function sweepMarkdown(summary: SweepSummary, out: string): string {
  const ranked = summary.recipes.filter((r) => r.rank !== undefined);
  const failed = summary.recipes.filter((r) => r.rank === undefined);
  const link = (file: string | undefined) => (file ? `[report](${relative(out, file)})` : '–');
  const options = (r: RankedRecipe) => (Object.keys(r.overrides).length ? Object.entries(r.overrides).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ') : '(the command line as given)');
  const lines = [
    `# Sweep: ${summary.recipes.length} recipe(s) of ${summary.model}`,
    '',
    `Dataset \`${summary.data}\`, grid \`${summary.grid}\`, ${Math.round(summary.wallSeconds)} s.`,
    '',
    `Ranked by ${RANKING_METRIC}.`,
    '',
    'The pooled test-fold figures are shown for the record only. The score is the best of what each fold tried (epochs or penalties), so it flatters recipes that try more; the chosen recipe\'s test-fold figures are the estimate to quote.',
    '',
    '| rank | recipe | validation bal. acc. (mean ± std over folds) | folds | frame bal. acc. (test folds, pooled) | video bal. acc. (test folds, pooled) | report |',
    '|---:|---|---:|---:|---:|---:|---|',
    ...ranked.map((r) => `| ${r.rank} | ${cell(r.name)} | ${f3(r.score)} ± ${f3(r.std)} | ${r.folds.length} | ${f3(r.test?.frameBalancedAccuracy)} | ${f3(r.test?.videoBalancedAccuracy)} | ${link(r.report)} |`),
    '',
    '## Recipes',
    '',
    '| recipe | options over the command line | what the folds scored on | validation score per fold |',
    '|---|---|---|---|',
    ...summary.recipes.map((r) => `| ${cell(r.name)} | ${cell(options(r))} | ${[...new Set(r.folds.map((f) => f.selection))].join(', ') || '–'} | ${r.folds.map((f) => f3(f.score)).join(', ') || '–'} |`),
    '',
  ];
  if (failed.length) {
    lines.push('## Not ranked', '', ...failed.map((r) => `- **${r.name}**: ${r.error ?? 'no score'}`), '');
  }
  if (summary.best) {
    lines.push(`## The best recipe as a cv of its own (${summary.best.name})`, '', 'Its folds are already trained in the sweep; as a cv of its own it also trains the refit on every frame (the model predict, export and serve use):', '', '```sh', summary.best.command, '```', '');
    if (summary.best.notExpressible.length) lines.push(`Options the command line cannot set (put them in a recipe): ${summary.best.notExpressible.join(', ')}.`, '');
  }
  return lines.join('\n');
}
