// Pictures of a 2-d embedding: a scatter coloured by class (vega-lite through src/plots) and a
// thumbnail map where each frame sits at its position with a border in its class colour.
import { renderChart, svgToPng, type ChartSpec, type RenderedChart } from '../plots/render.js';
import { writeFileAtomic } from '../util/atomic.js';
import { classColour, dataUrl, escapeXml, pngOf } from './figure.js';

export interface EmbeddedFrame {
  x: number;
  y: number;
  label: string;
  predicted?: string;
  path: string;
}

export async function renderEmbeddingScatter(points: readonly EmbeddedFrame[], classes: readonly string[], outBasePath: string, title: string): Promise<RenderedChart> {
  const present = classes.filter((c) => points.some((p) => p.label === c));
  const correctness = (p: EmbeddedFrame): string => (p.predicted === undefined ? 'n/a' : p.predicted === p.label ? 'yes' : 'no');
  const shapes = ([['yes', 'circle'], ['no', 'cross'], ['n/a', 'square']] as const).filter(([d]) => points.some((p) => correctness(p) === d));
  const spec: ChartSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 420,
    height: 420,
    data: { values: points.map((p) => ({ x: p.x, y: p.y, class: p.label, correct: correctness(p) })) },
    mark: { type: 'point', filled: true, size: 45, opacity: 0.8 },
    encoding: {
      x: { field: 'x', type: 'quantitative', axis: { title: null, labels: false, ticks: false }, scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', axis: { title: null, labels: false, ticks: false }, scale: { zero: false } },
      color: { field: 'class', type: 'nominal', scale: { domain: present, range: present.map((c) => classColour(classes, c)) }, legend: { title: 'label' } },
      shape: { field: 'correct', type: 'nominal', scale: { domain: shapes.map(([d]) => d), range: shapes.map(([, r]) => r) }, legend: { title: 'correct' } },
    },
  };
  return renderChart(spec, outBasePath);
}

export interface Thumbnail {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** Frames at their embedded positions, bordered in their class colour; PNG written to outPath. */
export async function renderThumbnailMap(
  points: readonly EmbeddedFrame[],
  thumbnails: readonly Thumbnail[],
  classes: readonly string[],
  outPath: string,
  options: { size?: number; thumb?: number; title?: string } = {},
): Promise<void> {
  const size = options.size ?? 1400;
  const thumb = options.thumb ?? Math.max(24, Math.min(64, Math.round(size / Math.sqrt(points.length + 1) / 1.5)));
  const border = Math.max(2, Math.round(thumb / 16));
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const span = (lo: number, hi: number): number => (hi > lo ? hi - lo : 1);
  // Title and legend sit in a header band above the map so that no thumbnail hides them.
  const top = 56;
  const inner = size - thumb - 2 * border;
  const parts: string[] = [];
  for (const [i, p] of points.entries()) {
    const t = thumbnails[i]!;
    const left = border + ((p.x - minX) / span(minX, maxX)) * inner;
    const y = top + border + (1 - (p.y - minY) / span(minY, maxY)) * inner;
    const png = await pngOf(t.rgb, t.width, t.height, thumb);
    parts.push(
      `<rect x="${left - border}" y="${y - border}" width="${thumb + 2 * border}" height="${thumb + 2 * border}" fill="${classColour(classes, p.label)}"/>` +
        `<image x="${left}" y="${y}" width="${thumb}" height="${thumb}" href="${dataUrl(png)}"><title>${escapeXml(p.path)}</title></image>`,
    );
  }
  const present = classes.filter((c) => points.some((p) => p.label === c));
  const legend = present
    .map((c, i) => `<rect x="${8 + i * 140}" y="34" width="12" height="12" fill="${classColour(classes, c)}"/><text x="${26 + i * 140}" y="45" font-size="13" font-family="DejaVu Sans">${escapeXml(c)}</text>`)
    .join('');
  const height = top + size;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${height}"><rect width="100%" height="100%" fill="white"/>
<text x="8" y="24" font-size="16" font-family="DejaVu Sans">${escapeXml(options.title ?? 'Frames at their embedded positions (border = label)')}</text>
${parts.join('\n')}
${legend}</svg>`;
  await writeFileAtomic(outPath, svgToPng(svg, 1));
}
