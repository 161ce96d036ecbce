// `pocovid bench --robustness <run>`: the decision-stability figures that issue 15 sets targets
// for (±1 grey level, JPEG 95, the resize kernels), measured on a run's own folds and printed
// against those targets, so that a change that makes the model brittle shows as "missed".
// Nothing is written: `pocovid robustness` is the command that keeps a report.
import { measureRobustness } from '../robustness/measure.js';
import { buildRobustnessReport, type RobustnessReport } from '../robustness/report.js';
import { pct, ROBUSTNESS_TARGETS } from '../robustness/stats.js';
import type { RuntimeChoice } from '../onnx/runtime.js';

export interface RobustnessBenchOptions {
  run: string;
  data?: string;
  runtime?: RuntimeChoice;
  quiet?: boolean;
}

export async function benchRobustness(options: RobustnessBenchOptions): Promise<RobustnessReport> {
  const measurement = await measureRobustness({ ...options, perturbations: [...ROBUSTNESS_TARGETS.perturbations] });
  return buildRobustnessReport(measurement);
}

const rate = (v: number | null): string => (v === null ? '–' : pct(v));
const fixed = (v: number | null): string => (v === null ? '–' : v.toFixed(4));

export function formatRobustnessBench(report: RobustnessReport): string {
  const t = report.targets;
  const lines = [
    `robustness of ${report.run}: ${report.frames} test frames, ${report.videos} videos and images, folds ${report.folds.map((f) => f.fold).join(',')} (${[...new Set(report.folds.map((f) => f.runtime))].join(', ')})`,
    `targets (issue 15): frame flips ≤ ${pct(t.maxFrameFlipRate)}, video flips ${t.maxVideoFlipRate === 0 ? 'none' : `≤ ${pct(t.maxVideoFlipRate)}`}, mean top-probability change < ${t.maxMeanTopProbChange}`,
    '| perturbation | frame flips | video flips | video sets changed | top-prob. change mean | p95 | max | target |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const p of report.perturbations) {
    const target = p.target === null ? '–' : p.target.met ? 'met' : `MISSED (${p.target.missed.join('; ')})`;
    lines.push(`| ${p.name} | ${rate(p.frameFlipRate)} | ${rate(p.videoFlipRate)} | ${p.videoSetChanges ?? '–'} | ${fixed(p.meanTopProbChange)} | ${fixed(p.p95TopProbChange)} | ${fixed(p.maxTopProbChange)} | ${target} |`);
  }
  return lines.join('\n');
}
