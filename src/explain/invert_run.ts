// `pocovid explain invert`: feature inversions of frames for every model a run folder holds (each
// fold's model, or each member of a model folder), at each layer asked for, as one panel per frame
// (the input, then a row per model with its inversions side by side), the single pictures,
// inversions.json (the resolved options and every inversion's start and end distance) and an
// HTML gallery (<out>/index.html).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { BadInputError } from '../errors.js';
import { loadModelDir, MODEL_META_FILE, runFoldDirs } from '../infer/model_dir.js';
import type { PretrainedCfg } from '../models/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { createRng } from '../util/rng.js';
import { svgToPng } from '../plots/render.js';
import { dataUrl, escapeXml, pngOf } from './figure.js';
import { invertFeatures, resolveInversionLayer, stretchForDisplay, type InversionOptions } from './invert.js';
import { fileItems, loadRunModel, runDataset, testItems, type ExplainItem } from './run_data.js';

export interface InversionRunOptions extends Omit<InversionOptions, 'rng' | 'onStep'> {
  run: string;
  /** Only these folds' models (default: every model the folder holds). */
  folds?: number[];
  /** Images or videos (the middle sampled frame of a video); none = test frames of the first fold. */
  files?: string[];
  /** 'base', 'penultimate' or layer names (default both kinds). */
  layers?: string[];
  out: string;
  seed?: number;
  /** At most this many test videos/images when no files are given (default 4). */
  limit?: number;
  fps?: number;
  maxFrames?: number;
  log?: (line: string) => void;
}

interface NamedModel {
  label: string;
  model: tfl.LayersModel;
  cfg: PretrainedCfg;
  fold: number | undefined;
}

/** Every model of a run (one per fold) or of a model folder (one per member). */
async function modelsOf(run: string, folds: number[] | undefined): Promise<NamedModel[]> {
  if (existsSync(join(run, MODEL_META_FILE))) {
    const loaded = await loadModelDir(run);
    return loaded.members.map((model, k) => ({ label: loaded.members.length > 1 ? `member-${k}` : loaded.meta.name, model, cfg: loaded.meta.cfg, fold: undefined }));
  }
  const available = runFoldDirs(run).map((f) => f.fold);
  if (available.length === 0) {
    const rm = await loadRunModel(run);
    return [{ label: rm.fold === undefined ? 'model' : `fold-${rm.fold}`, model: rm.model, cfg: rm.cfg, fold: rm.fold }];
  }
  const chosen = folds ?? available;
  const missing = chosen.filter((f) => !available.includes(f));
  if (missing.length > 0) throw new BadInputError(run, `has no fold ${missing.join(', ')}; folds present: ${available.join(', ')}`);
  const models: NamedModel[] = [];
  for (const fold of chosen) {
    const rm = await loadRunModel(run, fold);
    models.push({ label: `fold-${fold}`, model: rm.model, cfg: rm.cfg, fold });
  }
  return models;
}

/** The frame an item stands for: an image's only frame, a video's middle sampled frame. */
function middleFrame(item: ExplainItem): ExplainItem['frames'][number] {
  return item.frames[Math.floor((item.frames.length - 1) / 2)]!;
}

export interface InversionEntry {
  frame: number;
  name: string;
  model: string;
  layerSpec: string;
  layer: string;
  file: string;
  startDistance: number;
  endDistance: number;
  seconds: number;
}

export interface InversionRunResult {
  index: string;
  panels: string[];
  inversions: InversionEntry[];
}

export async function renderInversions(options: InversionRunOptions): Promise<InversionRunResult> {
  const log = options.log ?? (() => undefined);
  const layerSpecs = options.layers && options.layers.length > 0 ? options.layers : ['base', 'penultimate'];
  const models = await modelsOf(options.run, options.folds);
  try {
    const cfg = models[0]!.cfg;
    const other = models.find((m) => JSON.stringify(m.cfg.inputSize) !== JSON.stringify(cfg.inputSize));
    if (other) throw new BadInputError(options.run, `its models take different input sizes (${models[0]!.label}: ${cfg.inputSize.join('×')}, ${other.label}: ${other.cfg.inputSize.join('×')})`);
    const files = options.files ?? [];
    const items =
      files.length > 0
        ? await fileItems(files, cfg, { fps: options.fps, maxFrames: options.maxFrames })
        : await testItems(runDataset(options.run, models[0]!.fold), models[0]!.fold ?? 0, cfg, options.limit ?? 4);
    const resolved = models.map((m) => ({ label: m.label, layers: layerSpecs.map((spec) => ({ spec, layer: resolveInversionLayer(m.model, m.cfg, spec) })) }));
    const [h, w] = cfg.inputSize;
    const display = Math.max(160, w);
    const seed = options.seed ?? 0;
    const rng = createRng(seed);
    const inversions: InversionEntry[] = [];
    const panels: string[] = [];
    for (const [k, item] of items.entries()) {
      const frame = middleFrame(item);
      const dir = `frame-${String(k).padStart(3, '0')}`;
      const inputPng = await pngOf(frame.rgb, w, h, display);
      await writeFileAtomic(join(options.out, dir, 'input.png'), inputPng);
      const rows: PanelRow[] = [];
      for (const [m, model] of models.entries()) {
        const cells: PanelRow['cells'] = [];
        for (const { spec, layer } of resolved[m]!.layers) {
          const started = Date.now();
          const result = invertFeatures(model.model, model.cfg, layer, frame.rgb, { ...options, rng: rng.fork() });
          const seconds = (Date.now() - started) / 1000;
          const png = await pngOf(stretchForDisplay(result.rgb).rgb, w, h, display);
          const file = `${dir}/${model.label}-${layer}.png`;
          await writeFileAtomic(join(options.out, file), png);
          const [startDistance, endDistance] = [result.distances[0]!, result.distances.at(-1)!];
          inversions.push({ frame: k, name: item.name, model: model.label, layerSpec: spec, layer, file, startDistance, endDistance, seconds });
          cells.push({ title: spec === layer ? layer : `${spec}: ${layer}`, note: `feature distance ${startDistance.toFixed(2)} → ${endDistance.toFixed(2)}`, png });
          log(`[${k + 1}/${items.length}] ${model.label} ${layer}: relative feature distance ${startDistance.toFixed(3)} → ${endDistance.toFixed(3)} in ${seconds.toFixed(1)} s`);
        }
        rows.push({ label: model.label, cells });
      }
      const panel = `${dir}.png`;
      await writeFileAtomic(join(options.out, panel), panelPng(item, frame.time, inputPng, rows, display));
      panels.push(panel);
    }
    const settings = {
      steps: options.steps ?? 200,
      stepSize: options.stepSize ?? 0.01,
      tv: options.tv ?? 20,
      blurEvery: options.blurEvery ?? 4,
      startNoise: options.startNoise ?? 0.02,
      color: options.color ?? false,
      seed,
      display: 'each inversion contrast-stretched: its 1st–99th percentile grey levels mapped to 0–255',
    };
    await writeFileAtomic(
      join(options.out, 'inversions.json'),
      JSON.stringify({ run: options.run, models: resolved, layers: layerSpecs, ...settings, frames: items.map((i) => i.name), inversions }, null, 2) + '\n',
    );
    const index = join(options.out, 'index.html');
    await writeFileAtomic(index, galleryPage(options.run, items, panels, settings, resolved));
    return { index, panels, inversions };
  } finally {
    for (const m of models) m.model.dispose();
  }
}

interface PanelRow {
  label: string;
  /** Each inversion: the layer (title), its distances (note) and the picture. */
  cells: { title: string; note: string; png: Buffer }[];
}

/** One frame's panel: the input on the left, a row per model with its inversions (two caption lines each, so long layer names fit). */
function panelPng(item: ExplainItem, time: number, input: Buffer, rows: PanelRow[], display: number): Buffer {
  const gap = 12;
  const rowHeight = display + 40;
  const labelWidth = 80;
  const columns = Math.max(...rows.map((r) => r.cells.length));
  const width = labelWidth + (columns + 1) * (display + gap);
  const height = 30 + rows.length * rowHeight;
  const name = item.kind === 'video' ? `${item.name} (t = ${time.toFixed(1)} s)` : item.name;
  const parts = [`<text x="4" y="18" font-size="14" font-family="DejaVu Sans">Feature inversion · ${escapeXml(name)}${item.label ? ` · label ${escapeXml(item.label)}` : ''}</text>`];
  parts.push(`<text x="${labelWidth}" y="58" font-size="12" font-family="DejaVu Sans">input</text><image x="${labelWidth}" y="64" width="${display}" height="${display}" href="${dataUrl(input)}"/>`);
  rows.forEach((row, r) => {
    const y = 30 + r * rowHeight;
    parts.push(`<text x="4" y="${y + 34 + display / 2}" font-size="13" font-family="DejaVu Sans">${escapeXml(row.label)}</text>`);
    row.cells.forEach((cell, c) => {
      const x = labelWidth + (c + 1) * (display + gap);
      parts.push(
        `<text x="${x}" y="${y + 14}" font-size="11" font-family="DejaVu Sans">${escapeXml(cell.title)}</text>` +
          `<text x="${x}" y="${y + 28}" font-size="10" fill="#555" font-family="DejaVu Sans">${escapeXml(cell.note)}</text>` +
          `<image x="${x}" y="${y + 34}" width="${display}" height="${display}" href="${dataUrl(cell.png)}"/>`,
      );
    });
  });
  return svgToPng(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${parts.join('\n')}</svg>`, 1);
}

function galleryPage(run: string, items: ExplainItem[], panels: string[], settings: Record<string, unknown>, resolved: { label: string; layers: { spec: string; layer: string }[] }[]): string {
  const layers = resolved.map((m) => `${escapeXml(m.label)}: ${m.layers.map((l) => (l.spec === l.layer ? escapeXml(l.layer) : `${escapeXml(l.spec)} = ${escapeXml(l.layer)}`)).join(', ')}`).join('; ');
  const sections = panels.map((p, k) => `<section><h3>${escapeXml(items[k]!.name)}</h3><img src="${escapeXml(p)}" alt="inversions of ${escapeXml(items[k]!.name)}"></section>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Feature inversion · ${escapeXml(run)}</title>
<style>body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px;color:#222}section{border-top:1px solid #ccc;padding:8px 0}img{max-width:100%}.note{color:#555;font-size:13px}</style></head><body>
<h1>Feature inversion · ${escapeXml(run)}</h1>
<p class="note">Research use only; not a diagnostic device. Each picture starts from grey noise and is changed by gradient descent until its features at the named layer match those of the input frame (relative distance ‖φ(x) − φ(frame)‖ / ‖φ(frame)‖, start → end), with total-variation smoothing, a light blur every few steps and grey updates. Inversions are shown contrast-stretched (1st–99th percentile → full range): the descent leaves them near mid-grey. What the picture recovers, the layer keeps; what it cannot recover, the layer has discarded.</p>
<p class="note">Layers: ${layers}. Settings: ${escapeXml(JSON.stringify(settings))}.</p>
${sections}
</body></html>
`;
}
