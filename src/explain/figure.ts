// Pictures for people: a map blended over its frame with a labelled colour bar, built as SVG (the
// overlay embedded as PNG) and rendered with resvg in the charts' font, so text is crisp.
import sharp from 'sharp';
import { svgToPng } from '../plots/render.js';
import { jet, overlayMap } from './overlay.js';

/** Class colours shared by the scatter, the thumbnail map and the gallery. */
export const CLASS_COLOURS: Record<string, string> = {
  covid: '#d62728',
  pneumonia: '#ff7f0e',
  regular: '#2ca02c',
  viral: '#9467bd',
};
const SPARE_COLOURS = ['#1f77b4', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function classColour(classes: readonly string[], name: string): string {
  return CLASS_COLOURS[name] ?? SPARE_COLOURS[Math.max(0, classes.indexOf(name)) % SPARE_COLOURS.length]!;
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** RGB pixels → PNG bytes, scaled to `side`×`side`-ish display size (small test frames become visible). */
export async function pngOf(rgb: Uint8Array | Uint8ClampedArray, width: number, height: number, displayWidth = width): Promise<Buffer> {
  const displayHeight = Math.round((height * displayWidth) / width);
  let pipeline = sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } });
  if (displayWidth !== width) pipeline = pipeline.resize(displayWidth, displayHeight, { kernel: displayWidth > width * 2 ? 'nearest' : 'lanczos3' });
  return pipeline.png({ compressionLevel: 6 }).toBuffer();
}

export function dataUrl(png: Buffer): string {
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** Room right of the picture for the colour bar and its labels. */
const FIGURE_MARGIN = 96;

export interface MapFigureOptions {
  title: string;
  /** Text under the bar's ends (default "high" / "low"). */
  high?: string;
  low?: string;
  /** Displayed frame width in pixels (default max(224, frame width)). */
  displayWidth?: number;
}

/** Colour-bar gradient stops sampled from the same colour map as the overlay. */
function barStops(): string {
  const stops: string[] = [];
  for (let i = 0; i <= 10; i++) {
    const [r, g, b] = jet(1 - i / 10);
    stops.push(`<stop offset="${i * 10}%" stop-color="rgb(${r},${g},${b})"/>`);
  }
  return stops.join('');
}

/** A [0,1] map over its frame, with title and colour bar, as PNG bytes. */
export async function mapFigure(rgb: Uint8Array | Uint8ClampedArray, width: number, height: number, map: Float32Array, options: MapFigureOptions): Promise<Buffer> {
  const displayWidth = options.displayWidth ?? Math.max(224, width);
  const displayHeight = Math.round((height * displayWidth) / width);
  const overlay = await pngOf(overlayMap(rgb, width, height, map), width, height, displayWidth);
  const top = 24;
  const barX = displayWidth + 12;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${displayWidth + FIGURE_MARGIN}" height="${displayHeight + top + 6}">
<defs><linearGradient id="bar" x1="0" y1="0" x2="0" y2="1">${barStops()}</linearGradient></defs>
<rect width="100%" height="100%" fill="white"/>
<text x="0" y="16" font-size="13" font-family="DejaVu Sans">${escapeXml(options.title)}</text>
<image x="0" y="${top}" width="${displayWidth}" height="${displayHeight}" href="${dataUrl(overlay)}"/>
<rect x="${barX}" y="${top}" width="14" height="${displayHeight}" fill="url(#bar)" stroke="#444" stroke-width="0.5"/>
<text x="${barX + 18}" y="${top + 10}" font-size="11" font-family="DejaVu Sans">1.0</text>
<text x="${barX + 18}" y="${top + displayHeight / 2 + 4}" font-size="11" font-family="DejaVu Sans">0.5</text>
<text x="${barX + 18}" y="${top + displayHeight}" font-size="11" font-family="DejaVu Sans">0</text>
<text x="${barX + 18}" y="${top + 24}" font-size="10" fill="#555" font-family="DejaVu Sans">${escapeXml(options.high ?? 'high')}</text>
<text x="${barX + 18}" y="${top + displayHeight - 14}" font-size="10" fill="#555" font-family="DejaVu Sans">${escapeXml(options.low ?? 'low')}</text>
</svg>`;
  return svgToPng(svg, 1);
}

/** The plain frame with a title, laid out like mapFigure (same size) so gallery rows line up. */
export async function frameFigure(rgb: Uint8Array | Uint8ClampedArray, width: number, height: number, options: { title: string; displayWidth?: number }): Promise<Buffer> {
  const displayWidth = options.displayWidth ?? Math.max(224, width);
  const displayHeight = Math.round((height * displayWidth) / width);
  const png = await pngOf(rgb, width, height, displayWidth);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${displayWidth + FIGURE_MARGIN}" height="${displayHeight + 30}">
<rect width="100%" height="100%" fill="white"/>
<text x="0" y="16" font-size="13" font-family="DejaVu Sans">${escapeXml(options.title)}</text>
<image x="0" y="24" width="${displayWidth}" height="${displayHeight}" href="${dataUrl(png)}"/>
</svg>`;
  return svgToPng(svg, 1);
}
