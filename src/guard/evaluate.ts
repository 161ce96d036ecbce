// How well the not-ultrasound guard separates lung ultrasound from everything else, measured
// honestly: real frames are scored by a guard fitted on the OTHER folds (leave-one-fold-out), and
// non-ultrasound pictures (synthetic ones, plus a folder of photographs if given, in colour and
// converted to grey) by a guard fitted on all frames.
import { readdirSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import sharp from 'sharp';
import { openDataset } from '../data/dataset.js';
import { createRng } from '../util/rng.js';
import { frameFeatures } from './features.js';
import { featuresOfRows } from './fit_dataset.js';
import { checkFeatures, fitGuard } from './guard.js';
import { syntheticNegatives } from './negatives.js';

export interface GuardEvaluation {
  dataset: string;
  realFrames: number;
  /** Share of real frames flagged (guard fitted without their fold). */
  realFlaggedRate: number;
  realFlaggedPerFold: Record<string, { flagged: number; frames: number }>;
  realFlaggedSources: Record<string, number>;
  negatives: { kind: string; total: number; passed: number; passRate: number; passedNames: string[] }[];
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp']);

function listImages(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listImages(path));
    else if (IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) out.push(path);
  }
  return out.sort();
}

async function photoFeatures(path: string, grey: boolean): Promise<number[]> {
  let image = sharp(path).rotate().resize(224, 224, { fit: 'fill' }).removeAlpha();
  if (grey) image = image.grayscale();
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  let rgb = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (info.channels === 1) {
    const expanded = new Uint8Array(rgb.length * 3);
    rgb.forEach((v, i) => expanded.fill(v, i * 3, i * 3 + 3));
    rgb = expanded;
  }
  return frameFeatures(rgb, info.width, info.height);
}

export async function evaluateGuard(datasetDir: string, options: { photos?: string; seed?: number } = {}): Promise<GuardEvaluation> {
  const { rows, info } = openDataset(datasetDir);
  const features = await featuresOfRows(datasetDir, rows);
  const perFold: GuardEvaluation['realFlaggedPerFold'] = {};
  const flaggedSources: Record<string, number> = {};
  let flagged = 0;
  for (let fold = 0; fold < info.folds; fold++) {
    const train = features.filter((_, i) => rows[i]!.fold !== fold);
    const guard = fitGuard(train);
    let foldFlagged = 0;
    let frames = 0;
    rows.forEach((row, i) => {
      if (row.fold !== fold) return;
      frames += 1;
      if (checkFeatures(features[i]!, guard).flagged) {
        foldFlagged += 1;
        flaggedSources[row.source] = (flaggedSources[row.source] ?? 0) + 1;
      }
    });
    perFold[String(fold)] = { flagged: foldFlagged, frames };
    flagged += foldFlagged;
  }

  const guard = fitGuard(features);
  const negatives: GuardEvaluation['negatives'] = [];
  const score = (kind: string, items: { name: string; features: number[] }[]) => {
    const passed = items.filter((item) => !checkFeatures(item.features, guard).flagged).map((item) => item.name);
    negatives.push({ kind, total: items.length, passed: passed.length, passRate: items.length ? passed.length / items.length : 0, passedNames: passed });
  };
  const synthetic = await syntheticNegatives(createRng(options.seed ?? 0), 5, 224);
  const byKind = new Map<string, { name: string; features: number[] }[]>();
  for (const image of synthetic) {
    const kind = `synthetic ${image.name.replace(/-\d+$/, '').replace(/-(black|white|grey|light|dark|uniform|colour)$/, '')}`;
    const list = byKind.get(kind) ?? [];
    list.push({ name: image.name, features: frameFeatures(image.rgb, image.width, image.height) });
    byKind.set(kind, list);
  }
  for (const [kind, items] of byKind) score(kind, items);
  if (options.photos) {
    const photos = listImages(options.photos);
    const colour: { name: string; features: number[] }[] = [];
    const grey: { name: string; features: number[] }[] = [];
    for (const path of photos) {
      const name = relative(options.photos, path);
      colour.push({ name, features: await photoFeatures(path, false) });
      grey.push({ name, features: await photoFeatures(path, true) });
    }
    score('photographs and wallpapers (colour)', colour);
    score('photographs and wallpapers (converted to grey)', grey);
  }
  return {
    dataset: datasetDir,
    realFrames: rows.length,
    realFlaggedRate: rows.length ? flagged / rows.length : 0,
    realFlaggedPerFold: perFold,
    realFlaggedSources: flaggedSources,
    negatives,
  };
}

export function formatGuardEvaluation(e: GuardEvaluation): string {
  const lines = [
    `Real frames wrongly flagged (guard fitted on the other folds): ${(100 * e.realFlaggedRate).toFixed(1)}% of ${e.realFrames}`,
    '',
    '| input | n | got through | rate |',
    '|---|---:|---:|---:|',
    ...e.negatives.map((n) => `| ${n.kind} | ${n.total} | ${n.passed} | ${(100 * n.passRate).toFixed(1)}% |`),
  ];
  const sources = Object.entries(e.realFlaggedSources).sort((a, b) => b[1] - a[1]);
  if (sources.length) lines.push('', 'Flagged real frames by source: ' + sources.map(([s, n]) => `${s} (${n})`).join(', '));
  return lines.join('\n');
}
