// One spec builder per chart (pure, testable) and one render function per chart.
import type { PrCurve, RocCurve } from '../eval/types.js';
import { renderChart, type ChartSpec, type RenderedChart } from './render.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
/** More points than this make big SVGs and no visible difference. */
const MAX_CURVE_POINTS = 400;

/** Evenly spaced subset of a curve's point indices, always keeping both ends. */
export function thinIndices(length: number, max = MAX_CURVE_POINTS): number[] {
  if (length <= max) return Array.from({ length }, (_, i) => i);
  const step = (length - 1) / (max - 1);
  return [...new Set(Array.from({ length: max }, (_, i) => Math.round(i * step)))];
}

const fmt = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));

export interface ConfusionChartOptions {
  /** Divide each row by its total, so cells read as recall / confusion rates. */
  normalize?: boolean;
  title?: string;
}

export function confusionMatrixSpec(matrix: readonly (readonly number[])[], classes: readonly string[], options: ConfusionChartOptions = {}): ChartSpec {
  const values = matrix.flatMap((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, j) => {
      const value = options.normalize ? (total === 0 ? 0 : count / total) : count;
      return { actual: classes[i], predicted: classes[j], value, text: options.normalize ? value.toFixed(2) : String(count) };
    });
  });
  const max = Math.max(1e-9, ...values.map((v) => v.value));
  const size = Math.max(180, 70 * classes.length);
  const order = [...classes];
  return {
    $schema: SCHEMA,
    title: options.title ?? (options.normalize ? 'Confusion matrix (row-normalised)' : 'Confusion matrix (counts)'),
    width: size,
    height: size,
    data: { values },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: order, title: 'Predicted class', axis: { labelAngle: 0, orient: 'top' } },
      y: { field: 'actual', type: 'nominal', sort: order, title: 'True class' },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: {
            field: 'value',
            type: 'quantitative',
            scale: { scheme: 'blues', domain: [0, options.normalize ? 1 : max] },
            title: options.normalize ? 'fraction of row' : 'frames',
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 14 },
        encoding: {
          text: { field: 'text', type: 'nominal' },
          color: { condition: { test: `datum.value > ${(options.normalize ? 1 : max) * 0.55}`, value: 'white' }, value: 'black' },
        },
      },
    ],
  } as ChartSpec;
}

function curveChart(
  series: { name: string; x: number[]; y: number[] }[],
  axes: { x: string; y: string; title: string; diagonal: boolean; legendCorner: 'bottom-right' | 'bottom-left' },
): ChartSpec {
  const values = series.flatMap((s) => thinIndices(s.x.length).map((i, order) => ({ curve: s.name, x: s.x[i], y: s.y[i], order })));
  const names = series.map((s) => s.name);
  const layers: unknown[] = [];
  if (axes.diagonal) {
    layers.push({
      data: { values: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
      mark: { type: 'line', strokeDash: [4, 4], color: '#999999' },
      encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
    });
  }
  layers.push({
    data: { values },
    mark: { type: 'line', strokeWidth: 2, interpolate: 'linear' },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: axes.x, scale: { domain: [0, 1] } },
      y: { field: 'y', type: 'quantitative', title: axes.y, scale: { domain: [0, 1] } },
      color: { field: 'curve', type: 'nominal', sort: names, title: null, legend: { orient: axes.legendCorner, fillColor: 'white', padding: 4 } },
      strokeDash: {
        field: 'curve',
        type: 'nominal',
        sort: names,
        // averages dashed, classes solid
        scale: { domain: names, range: names.map((n) => (/^(micro|macro) /.test(n) ? [6, 3] : [1, 0])) },
        legend: null,
      },
      order: { field: 'order', type: 'quantitative' },
    },
  });
  return { $schema: SCHEMA, title: axes.title, width: 360, height: 360, layer: layers } as ChartSpec;
}

/** ROC curves: one per class (one-vs-rest) plus micro and macro averages, AUC in the legend. */
export function rocSpec(roc: Record<string, RocCurve>, classes: readonly string[], title = 'ROC (one-vs-rest)'): ChartSpec {
  const keys = [...classes, 'micro', 'macro'].filter((k) => roc[k] && roc[k]!.fpr.every(Number.isFinite));
  const series = keys.map((k) => ({ name: `${k === 'micro' || k === 'macro' ? `${k} average` : k} (AUC ${fmt(roc[k]!.auc)})`, x: roc[k]!.fpr, y: roc[k]!.tpr }));
  return curveChart(series, { x: 'False positive rate (1 − specificity)', y: 'True positive rate (sensitivity)', title, diagonal: true, legendCorner: 'bottom-right' });
}

/** Precision-recall curves per class plus the micro average, average precision in the legend. */
export function prSpec(pr: Record<string, PrCurve>, classes: readonly string[], title = 'Precision-recall (one-vs-rest)'): ChartSpec {
  const keys = [...classes, 'micro'].filter((k) => pr[k] && pr[k]!.recall.every(Number.isFinite));
  const series = keys.map((k) => ({ name: `${k === 'micro' ? 'micro average' : k} (AP ${fmt(pr[k]!.averagePrecision)})`, x: pr[k]!.recall, y: pr[k]!.precision }));
  return curveChart(series, { x: 'Recall (sensitivity)', y: 'Precision', title, diagonal: false, legendCorner: 'bottom-left' });
}

export interface FoldScore {
  fold: number;
  /** e.g. "frame" or "video". */
  level: string;
  value: number;
}

/** Balanced accuracy of each fold, frame and video side by side, with each level's mean as a rule. */
export function foldBarSpec(scores: readonly FoldScore[], title = 'Balanced accuracy per fold', metric = 'Balanced accuracy'): ChartSpec {
  const values = scores.map((s) => ({ fold: `fold ${s.fold}`, level: s.level, value: s.value, label: s.value.toFixed(2) }));
  const folds = [...new Set(values.map((v) => v.fold))];
  return {
    $schema: SCHEMA,
    title,
    width: Math.max(240, 90 * folds.length),
    height: 260,
    data: { values },
    encoding: {
      x: { field: 'fold', type: 'nominal', sort: folds, title: 'Fold', axis: { labelAngle: 0 } },
      y: { field: 'value', type: 'quantitative', title: metric, scale: { domain: [0, 1] } },
      xOffset: { field: 'level', type: 'nominal' },
      color: { field: 'level', type: 'nominal', title: 'Level' },
    },
    layer: [
      { mark: 'bar' },
      { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: { text: { field: 'label', type: 'nominal' }, color: { value: 'black' } } },
    ],
  } as ChartSpec;
}

/** One line of history.jsonl (fields other than epoch may be missing). */
export interface HistoryEntry {
  epoch: number;
  loss?: number;
  accuracy?: number;
  valLoss?: number;
  valAccuracy?: number;
  valBalancedAccuracy?: number;
  lr?: number;
  [key: string]: unknown;
}

const HISTORY_PANELS: { title: string; series: [keyof HistoryEntry, string][]; logScale?: boolean }[] = [
  { title: 'Loss', series: [['loss', 'train loss'], ['valLoss', 'validation loss']] },
  { title: 'Accuracy', series: [['accuracy', 'train accuracy'], ['valAccuracy', 'validation accuracy'], ['valBalancedAccuracy', 'validation balanced accuracy']] },
  { title: 'Learning rate', series: [['lr', 'learning rate']], logScale: true },
];

/** Training history: loss, accuracy / balanced accuracy and learning rate by epoch, stacked. */
export function historySpec(entries: readonly HistoryEntry[], title = 'Training history'): ChartSpec {
  const panels = HISTORY_PANELS.map((panel) => {
    const values = entries.flatMap((e) =>
      panel.series
        .filter(([key]) => typeof e[key] === 'number' && Number.isFinite(e[key]))
        .map(([key, name]) => ({ epoch: e.epoch, series: name, value: e[key] as number })),
    );
    return { panel, values };
  }).filter((p) => p.values.length > 0);
  return {
    $schema: SCHEMA,
    title,
    vconcat: panels.map(({ panel, values }) => ({
      width: 420,
      height: 150,
      data: { values },
      mark: { type: 'line', point: entries.length <= 40 },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'Epoch', axis: { tickMinStep: 1 } },
        y: {
          field: 'value',
          type: 'quantitative',
          title: panel.title,
          scale: panel.logScale ? { type: 'log' } : { zero: false },
          axis: panel.logScale ? { format: '.0e', tickCount: 4 } : {},
        },
        color: { field: 'series', type: 'nominal', title: null, sort: panel.series.map(([, n]) => n) },
      },
    })),
    resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
  } as ChartSpec;
}

export function renderConfusionMatrix(matrix: readonly (readonly number[])[], classes: readonly string[], outBasePath: string, options: ConfusionChartOptions = {}): Promise<RenderedChart> {
  return renderChart(confusionMatrixSpec(matrix, classes, options), outBasePath);
}

export function renderRoc(roc: Record<string, RocCurve>, classes: readonly string[], outBasePath: string, title?: string): Promise<RenderedChart> {
  return renderChart(rocSpec(roc, classes, title), outBasePath);
}

export function renderPr(pr: Record<string, PrCurve>, classes: readonly string[], outBasePath: string, title?: string): Promise<RenderedChart> {
  return renderChart(prSpec(pr, classes, title), outBasePath);
}

export function renderFoldBars(scores: readonly FoldScore[], outBasePath: string, title?: string): Promise<RenderedChart> {
  return renderChart(foldBarSpec(scores, title), outBasePath);
}

export function renderHistory(entries: readonly HistoryEntry[], outBasePath: string, title?: string): Promise<RenderedChart> {
  return renderChart(historySpec(entries, title), outBasePath);
}
