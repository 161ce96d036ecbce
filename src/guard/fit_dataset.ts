// Fits the not-ultrasound guard on the frames of a dataset (the frames a model was trained on).
import { join } from 'node:path';
import type { ManifestRow } from '../data/types.js';
import { decodeImage } from '../data/image.js';
import { FEATURE_NAMES, frameFeatures } from './features.js';
import { fitGuard, type FitOptions, type GuardStats } from './guard.js';

export async function featuresOfRows(datasetDir: string, rows: readonly ManifestRow[]): Promise<number[][]> {
  const out: number[][] = [];
  for (const row of rows) {
    const image = await decodeImage(join(datasetDir, row.path));
    out.push(frameFeatures(image.rgb, image.width, image.height));
  }
  return out;
}

/** undefined when there are too few frames for a covariance (tiny test datasets). */
export async function fitGuardOnRows(datasetDir: string, rows: readonly ManifestRow[], options?: FitOptions): Promise<GuardStats | undefined> {
  if (rows.length < FEATURE_NAMES.length + 2) return undefined;
  return fitGuard(await featuresOfRows(datasetDir, rows), options);
}
