// Vega-Lite spec -> Vega view (headless, renderer "none": no canvas package needed in Node) ->
// SVG string -> PNG through resvg. Both files are written atomically next to each other.
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../util/atomic.js';

export type ChartSpec = TopLevelSpec;

/** The font the charts ask for and resvg renders with (Debian: fonts-dejavu-core). */
export const CHART_FONT = 'DejaVu Sans';

/** PNG pixels per SVG unit: 2 keeps labels crisp on high-density screens and in documents. */
export const PNG_SCALE = 2;

/** Look shared by every chart; a spec's own `config` overrides it. */
export const BASE_CONFIG = {
  font: CHART_FONT,
  background: 'white',
  padding: 8,
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e5e5e5' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  title: { fontSize: 14, anchor: 'start' as const, offset: 10 },
  view: { stroke: '#bbbbbb' },
};

export async function chartToSvg(spec: ChartSpec): Promise<string> {
  const withConfig = { ...spec, config: { ...BASE_CONFIG, ...(spec.config ?? {}) } } as ChartSpec;
  const view = new vega.View(vega.parse(compile(withConfig).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function svgToPng(svg: string, scale = PNG_SCALE): Buffer {
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: scale },
    font: { loadSystemFonts: true, defaultFontFamily: CHART_FONT, sansSerifFamily: CHART_FONT },
  });
  return resvg.render().asPng();
}

export interface RenderedChart {
  svgPath: string;
  pngPath: string;
}

/** Writes `<outBasePath>.svg` and `<outBasePath>.png`. */
export async function renderChart(spec: ChartSpec, outBasePath: string): Promise<RenderedChart> {
  const svg = await chartToSvg(spec);
  const svgPath = `${outBasePath}.svg`;
  const pngPath = `${outBasePath}.png`;
  await writeFileAtomic(svgPath, svg);
  await writeFileAtomic(pngPath, svgToPng(svg));
  return { svgPath, pngPath };
}
