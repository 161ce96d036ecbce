// Pictures of a report's worst errors: the frame as the model saw it and its Grad-CAM for the
// (wrong) class the model chose, from the fold model that predicted it, written next to the
// report. A run whose dataset or models are gone still gets its report, without the pictures.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../engine/index.js';
import type { WorstError } from '../eval/worst_errors.js';
import { decodeImageTo } from '../infer/media.js';
import { pixelsToInput } from '../models/preprocess.js';
import { writeFileAtomic } from '../util/atomic.js';
import { pngOf } from './figure.js';
import { gradCam } from './gradcam.js';
import { overlayMap } from './overlay.js';
import { loadRunModel, runDataset, type RunModel } from './run_data.js';

/** Sub-folder of the report folder holding the pictures. */
export const REPORT_FILES_DIR = 'report_files';
const THUMBNAIL_WIDTH = 160;

export interface ErrorFigures {
  entries: WorstError[];
  /** Why some or all pictures are missing. */
  note?: string;
}

/** Writes <outDir>/report_files/error-<k>-{frame,gradcam}.png for each error it can. */
export async function renderErrorFigures(run: string, errors: readonly WorstError[], outDir: string): Promise<ErrorFigures> {
  if (errors.length === 0) return { entries: [] };
  await initEngine();
  const models = new Map<number, RunModel>();
  const problems = new Set<string>();
  const entries: WorstError[] = [];
  try {
    for (const [k, error] of errors.entries()) {
      try {
        let rm = models.get(error.fold);
        if (!rm) {
          rm = await loadRunModel(run, error.fold);
          models.set(error.fold, rm);
        }
        const [h, w] = rm.cfg.inputSize;
        const frame = await decodeImageTo(join(runDataset(run, rm.fold), error.path), w, h);
        const classIndex = rm.classes.indexOf(error.predicted);
        if (classIndex < 0) throw new Error(`the fold ${error.fold} model has no class "${error.predicted}"`);
        const x = tf.tensor4d(pixelsToInput(frame.rgb, rm.cfg), [1, h, w, rm.cfg.channels]);
        let map: Float32Array;
        try {
          map = gradCam(rm.model, x, rm.cfg.camLayer, classIndex).map;
        } finally {
          x.dispose();
        }
        const base = `${REPORT_FILES_DIR}/error-${String(k + 1).padStart(2, '0')}`;
        await writeFileAtomic(join(outDir, `${base}-frame.png`), await pngOf(frame.rgb, w, h, THUMBNAIL_WIDTH));
        await writeFileAtomic(join(outDir, `${base}-gradcam.png`), await pngOf(overlayMap(frame.rgb, w, h, map), w, h, THUMBNAIL_WIDTH));
        entries.push({ ...error, frameImage: `${base}-frame.png`, gradcamImage: `${base}-gradcam.png` });
      } catch (err) {
        problems.add((err as Error).message);
        entries.push({ ...error });
      }
    }
  } finally {
    for (const rm of models.values()) rm.model.dispose();
  }
  return problems.size > 0 ? { entries, note: `Pictures missing where they could not be made: ${[...problems].join('; ')}.` } : { entries };
}
