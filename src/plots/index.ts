// Charts as SVG and PNG, for reports and docs.
export { renderChart, chartToSvg, svgToPng, CHART_FONT, PNG_SCALE, type ChartSpec, type RenderedChart } from './render.js';
export {
  confusionMatrixSpec,
  rocSpec,
  prSpec,
  foldBarSpec,
  historySpec,
  renderConfusionMatrix,
  renderRoc,
  renderPr,
  renderFoldBars,
  renderHistory,
  type ConfusionChartOptions,
  type FoldScore,
  type HistoryEntry,
} from './charts.js';
export { readHistoryJsonl } from './history.js';
