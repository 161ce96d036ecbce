// A recipe over several fold assignments (fold seeds): the pooled metrics of each repeat and their
// mean ± std, so that a difference between recipes can be told from the swing of one assignment.
import type { Evaluation } from './evaluate.js';

/** The figures a repeat is summarised by (pooled over its folds). */
export interface RepeatFigures {
  frameAccuracy: number;
  frameBalancedAccuracy: number;
  frameMacroAuc: number;
  videoAccuracy: number;
  videoBalancedAccuracy: number;
  /** Per class: share of that class's videos decided as it (COVID video recall, regular video specificity…). */
  videoRecall: Record<string, number>;
  frameRecall: Record<string, number>;
}

export interface RepeatsSummary {
  seeds: number[];
  repeats: (RepeatFigures & { seed: number; run: string })[];
  mean: RepeatFigures;
  std: RepeatFigures;
}

export function repeatFigures(report: Evaluation): RepeatFigures {
  const recall = (m: Evaluation['frame']) => Object.fromEntries(Object.entries(m.perClass).map(([c, v]) => [c, v.recall]));
  return {
    frameAccuracy: report.frame.accuracy,
    frameBalancedAccuracy: report.frame.balancedAccuracy,
    frameMacroAuc: report.frame.auc.macro ?? Number.NaN,
    videoAccuracy: report.video.accuracy,
    videoBalancedAccuracy: report.video.balancedAccuracy,
    videoRecall: recall(report.video),
    frameRecall: recall(report.frame),
  };
}

/** Mean and (population) standard deviation of each figure. */
export function summarizeRepeats(repeats: (RepeatFigures & { seed: number; run: string })[]): RepeatsSummary {
  const stat = (values: number[]): [number, number] => {
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    return [mean, Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length)];
  };
  const scalar = ['frameAccuracy', 'frameBalancedAccuracy', 'frameMacroAuc', 'videoAccuracy', 'videoBalancedAccuracy'] as const;
  const mean = {} as RepeatFigures;
  const std = {} as RepeatFigures;
  for (const key of scalar) [mean[key], std[key]] = stat(repeats.map((r) => r[key]));
  for (const key of ['videoRecall', 'frameRecall'] as const) {
    mean[key] = {};
    std[key] = {};
    for (const c of Object.keys(repeats[0]![key])) [mean[key][c], std[key][c]] = stat(repeats.map((r) => r[key][c]!));
  }
  return { seeds: repeats.map((r) => r.seed), repeats, mean, std };
}

const pm = (m: number, s: number) => `${m.toFixed(3)} ± ${s.toFixed(3)}`;

export function repeatsMarkdown(summary: RepeatsSummary, title: string): string {
  const classes = Object.keys(summary.mean.videoRecall);
  const head = ['fold seed', 'frame acc.', 'frame bal. acc.', 'frame macro AUC', 'video acc.', 'video bal. acc.', ...classes.map((c) => `${c} video recall`)];
  const row = (label: string, f: (k: keyof RepeatFigures, c?: string) => string) => [
    label,
    f('frameAccuracy'),
    f('frameBalancedAccuracy'),
    f('frameMacroAuc'),
    f('videoAccuracy'),
    f('videoBalancedAccuracy'),
    ...classes.map((c) => f('videoRecall', c)),
  ];
  const lines = [
    `# ${title}: ${summary.seeds.length} fold assignments`,
    '',
    'Each row pools the out-of-fold predictions of one cross-validation; the last row is the mean ± std over fold seeds.',
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...summary.repeats.map((r) => `| ${row(String(r.seed), (k, c) => ((c ? (r[k] as Record<string, number>)[c] : r[k]) as number).toFixed(3)).join(' | ')} |`),
    `| ${row('mean ± std', (k, c) => (c ? pm((summary.mean[k] as Record<string, number>)[c]!, (summary.std[k] as Record<string, number>)[c]!) : pm(summary.mean[k] as number, summary.std[k] as number))).join(' | ')} |`,
    '',
  ];
  return lines.join('\n');
}
