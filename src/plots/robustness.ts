// The robustness chart: per perturbation, the share of frame and video labels that flip (with the
// 1% target) beside the distribution of the change of the top probability (with the 0.01 target
// for its mean). Pure spec builder plus its render function, like charts.ts.
import { renderChart, type ChartSpec, type RenderedChart } from './render.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** What the chart needs of each perturbation's summary (null: the perturbation had no frame or video). */
export interface RobustnessPlotRow {
  name: string;
  frameFlipRate: number | null;
  videoFlipRate: number | null;
  meanTopProbChange: number | null;
  medianTopProbChange: number | null;
  p95TopProbChange: number | null;
  maxTopProbChange: number | null;
}

export interface RobustnessPlotTargets {
  maxFrameFlipRate: number;
  maxMeanTopProbChange: number;
}

export function robustnessSpec(rows: readonly RobustnessPlotRow[], targets: RobustnessPlotTargets, title = 'Decision stability under perturbations'): ChartSpec {
  const names = rows.map((r) => r.name);
  const flips = rows.flatMap((r) =>
    (
      [
        ['frame', r.frameFlipRate],
        ['video', r.videoFlipRate],
      ] as const
    )
      .filter(([, v]) => v !== null)
      .map(([level, v]) => ({ perturbation: r.name, level, rate: v!, label: `${(100 * v!).toFixed(1)}%` })),
  );
  const changes = rows.flatMap((r) =>
    (
      [
        ['mean', r.meanTopProbChange],
        ['median', r.medianTopProbChange],
        ['95th percentile', r.p95TopProbChange],
        ['max', r.maxTopProbChange],
      ] as const
    )
      .filter(([, v]) => v !== null)
      .map(([statistic, v]) => ({ perturbation: r.name, statistic, value: v! })),
  );
  const height = Math.max(160, 34 * names.length);
  // At least twice the target, so that a run with no flip still shows where the target lies.
  const flipMax = Math.max(2 * targets.maxFrameFlipRate, ...flips.map((f) => f.rate)) * 1.15;
  const statistics = ['mean', 'median', '95th percentile', 'max'];
  const y = { field: 'perturbation', type: 'nominal', sort: names, title: null };
  return {
    $schema: SCHEMA,
    title,
    hconcat: [
      {
        title: `Labels that flip (dashed: the ${(100 * targets.maxFrameFlipRate).toFixed(0)}% target for frames)`,
        width: 320,
        height,
        layer: [
          {
            data: { values: flips },
            mark: 'bar',
            encoding: {
              y,
              yOffset: { field: 'level', type: 'nominal', sort: ['frame', 'video'] },
              x: { field: 'rate', type: 'quantitative', title: 'share of labels', axis: { format: '.1~%' }, scale: { domain: [0, flipMax], nice: false } },
              color: { field: 'level', type: 'nominal', sort: ['frame', 'video'], title: 'level', scale: { range: ['#4c78a8', '#f58518'] } },
            },
          },
          {
            data: { values: flips },
            mark: { type: 'text', align: 'left', dx: 3, fontSize: 9 },
            encoding: {
              y,
              yOffset: { field: 'level', type: 'nominal', sort: ['frame', 'video'] },
              x: { field: 'rate', type: 'quantitative' },
              text: { field: 'label', type: 'nominal' },
            },
          },
          {
            data: { values: [{ target: targets.maxFrameFlipRate }] },
            mark: { type: 'rule', strokeDash: [4, 3], color: '#c0392b' },
            encoding: { x: { field: 'target', type: 'quantitative' } },
          },
        ],
      },
      {
        title: `Change of the top probability, frames (dashed: the ${targets.maxMeanTopProbChange} target for the mean)`,
        width: 320,
        height,
        layer: [
          {
            data: { values: changes },
            mark: { type: 'point', filled: true, size: 70, opacity: 0.9 },
            encoding: {
              y: { ...y, axis: null },
              x: { field: 'value', type: 'quantitative', title: '|Δ p(decided class)| (square-root scale)', scale: { type: 'sqrt', domainMin: 0, nice: true }, axis: { tickCount: 8 } },
              color: { field: 'statistic', type: 'nominal', sort: statistics, title: 'statistic', scale: { domain: statistics, range: ['#1f77b4', '#2ca02c', '#ff7f0e', '#d62728'] } },
            },
          },
          {
            data: { values: [{ target: targets.maxMeanTopProbChange }] },
            mark: { type: 'rule', strokeDash: [4, 3], color: '#c0392b' },
            encoding: { x: { field: 'target', type: 'quantitative' } },
          },
        ],
      },
    ],
    resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
  } as ChartSpec;
}

export function renderRobustness(rows: readonly RobustnessPlotRow[], targets: RobustnessPlotTargets, outBasePath: string, title?: string): Promise<RenderedChart> {
  return renderChart(robustnessSpec(rows, targets, title), outBasePath);
}
