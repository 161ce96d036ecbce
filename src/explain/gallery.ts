// The per-run HTML gallery: one section per image or video with its label, prediction and
// MC-dropout uncertainty, and its maps side by side (a video: one strip per method over its
// sampled frames); an input the not-ultrasound guard refused shows its frames and the reason, and
// one explained despite it (--no-guard) says so plainly. Self-contained: relative links to the
// PNGs next to it, no scripts.
import { classColour, escapeXml } from './figure.js';
import type { ItemGuard } from './run_data.js';

export interface GalleryFrame {
  index: number;
  time: number;
  /** Relative path of the frame picture, then of each map picture by method. */
  image: string;
  maps: Record<string, string>;
  /** null when the guard refused the input. */
  probabilities: number[] | null;
  predicted: string | null;
}

export interface GalleryItem {
  id: string;
  name: string;
  kind: 'image' | 'video';
  label?: string;
  /** The guard's verdict on a file given to explain. */
  guard?: ItemGuard;
  /** null when the guard refused the input: no diagnosis, nothing explained. */
  predicted: string | null;
  probabilities: number[] | null;
  mcMean: number[] | null;
  mcStd: number[] | null;
  frames: GalleryFrame[];
}

export interface GalleryInfo {
  title: string;
  classes: string[];
  methods: { key: string; title: string }[];
  notes: string[];
}

const pct = (p: number): string => `${(100 * p).toFixed(1)}%`;

function probabilityTable(item: GalleryItem, classes: string[]): string {
  const head = `<tr><th></th>${classes.map((c) => `<th style="color:${classColour(classes, c)}">${escapeXml(c)}</th>`).join('')}</tr>`;
  const row = (name: string, values: number[] | null): string =>
    values ? `<tr><td>${name}</td>${values.map((v) => `<td>${pct(v)}</td>`).join('')}</tr>` : '';
  return `<table class="probs">${head}${row('probability', item.probabilities)}${row('MC-dropout mean', item.mcMean)}${row('MC-dropout std', item.mcStd)}</table>`;
}

function verdict(item: GalleryItem, classes: string[]): string {
  if (item.predicted === null) {
    return `<b class="bad">no diagnosis</b>: the not-ultrasound guard refused this input (${escapeXml(item.guard?.reason ?? '')}); nothing is explained (--no-guard explains it anyway)`;
  }
  const overridden = item.guard?.overridden
    ? `<b class="bad">guard overridden (--no-guard)</b>: the not-ultrasound guard refused this input (${escapeXml(item.guard.reason)}); the prediction and maps below were made anyway. `
    : '';
  const k = classes.indexOf(item.predicted);
  const std = item.mcStd?.[k];
  const label = item.label === undefined ? '' : `label <b style="color:${classColour(classes, item.label)}">${escapeXml(item.label)}</b> · `;
  const mark = item.label === undefined ? '' : item.label === item.predicted ? ' <span class="ok">✓</span>' : ' <span class="bad">✗</span>';
  const spread = std === undefined ? '' : ` ± ${pct(std)} (MC dropout)`;
  return `${overridden}${label}predicted <b style="color:${classColour(classes, item.predicted)}">${escapeXml(item.predicted)}</b> ${pct(item.probabilities?.[k] ?? 0)}${spread}${mark}`;
}

function imageRow(item: GalleryItem, info: GalleryInfo): string {
  const frame = item.frames[0]!;
  const cells = [`<figure><img src="${escapeXml(frame.image)}" alt="frame"><figcaption>frame</figcaption></figure>`];
  for (const m of info.methods) if (frame.maps[m.key]) cells.push(`<figure><img src="${escapeXml(frame.maps[m.key]!)}" alt="${m.title}"></figure>`);
  return `<div class="row">${cells.join('')}</div>`;
}

function videoStrips(item: GalleryItem, info: GalleryInfo): string {
  const strip = (title: string, pick: (f: GalleryFrame) => string | undefined): string => {
    const cells = item.frames
      .map((f) => {
        const src = pick(f);
        const said = f.predicted === null ? 'no diagnosis' : `${escapeXml(f.predicted)} ${pct(f.probabilities?.[info.classes.indexOf(f.predicted)] ?? 0)}`;
        return src ? `<figure><img src="${escapeXml(src)}" alt="${title}"><figcaption>t = ${f.time.toFixed(1)} s · ${said}</figcaption></figure>` : '';
      })
      .join('');
    return `<h4>${escapeXml(title)}</h4><div class="strip">${cells}</div>`;
  };
  return [strip('frames', (f) => f.image), ...info.methods.filter((m) => item.frames.some((f) => f.maps[m.key])).map((m) => strip(m.title, (f) => f.maps[m.key]))].join('');
}

export function galleryHtml(items: readonly GalleryItem[], info: GalleryInfo): string {
  const correct = items.filter((i) => i.label !== undefined && i.label === i.predicted).length;
  const labelled = items.filter((i) => i.label !== undefined).length;
  const sections = items
    .map(
      (item) => `<section id="${item.id}"><h3>${escapeXml(item.name)} <small>(${item.kind}${item.kind === 'video' ? `, ${item.frames.length} frames` : ''})</small></h3>
<p>${verdict(item, info.classes)}</p>${probabilityTable(item, info.classes)}
${item.kind === 'video' ? videoStrips(item, info) : imageRow(item, info)}</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(info.title)}</title>
<style>
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px;color:#222}
section{border-top:1px solid #ccc;padding:8px 0 16px}
.row,.strip{display:flex;gap:8px;align-items:flex-start}
.strip{overflow-x:auto;padding-bottom:6px}
figure{margin:0}figcaption{font-size:12px;color:#555}
img{display:block;max-width:none}
table.probs{border-collapse:collapse;font-size:13px;margin:6px 0}
table.probs td,table.probs th{padding:2px 8px;text-align:right}
.ok{color:#2ca02c}.bad{color:#d62728}.note{color:#555;font-size:13px}
</style></head><body>
<h1>${escapeXml(info.title)}</h1>
<p class="note">Research use only; not a diagnostic device. ${labelled > 0 ? `${correct} of ${labelled} items predicted correctly.` : ''}</p>
${info.notes.map((n) => `<p class="note">${escapeXml(n)}</p>`).join('\n')}
${sections}
</body></html>
`;
}
