// Wall time of `pocovid cv` on a fixed small phantom dataset, per model and runtime: the whole
// training path (feature cache on the runtime, epochs of the trainable part on TF.js, test
// predictions, ensemble) rather than single steps. The dataset is written to a temporary folder
// from fixed seeds, so every machine times the same work.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset } from '../data/build.js';
import { writePhantom } from '../data/phantom.js';
import { initEngine } from '../engine/index.js';
import type { Runtime } from '../onnx/runtime.js';
import { runCrossValidation } from '../train/cv.js';
import { runtimeLabel } from './measure.js';

export interface CvBenchSpec {
  model: string;
  inputSize: [number, number];
}

/** The default runs: a model trained from scratch at a small size and a pretrained-style cut at full size. */
export const CV_BENCH_SPECS: readonly CvBenchSpec[] = [
  { model: 'grayscale_cnn', inputSize: [64, 64] },
  { model: 'mobilenet_v1', inputSize: [224, 224] },
];

export interface CvBenchResult {
  model: string;
  /** As in the per-model results: 'tfjs-wasm' (or another TF.js backend) or 'ort'. */
  runtime: string;
  inputSize: [number, number];
  epochs: number;
  folds: number;
  frames: number;
  seconds: number;
}

export interface CvBenchOptions {
  specs?: readonly CvBenchSpec[];
  runtimes: Runtime[];
  epochs?: number;
  onResult?: (result: CvBenchResult) => void;
}

const FOLDS = 3;

export async function benchCrossValidation(options: CvBenchOptions): Promise<CvBenchResult[]> {
  const epochs = options.epochs ?? 2;
  const engine = await initEngine();
  const root = mkdtempSync(join(tmpdir(), 'pocovid-bench-cv-'));
  try {
    const source = join(root, 'phantom');
    const data = join(root, 'dataset');
    await writePhantom({ out: source, perClass: 3, imagesPerClass: 1, size: 96, frames: 6, seed: 0, quiet: true });
    const built = await buildDataset({ source, out: data, size: 224, folds: FOLDS, seed: 0, quiet: true });
    const results: CvBenchResult[] = [];
    for (const spec of options.specs ?? CV_BENCH_SPECS) {
      for (const runtime of options.runtimes) {
        const out = join(root, `cv-${spec.model}-${runtime}`);
        const cv = await runCrossValidation({ data, model: spec.model, out, epochs, inputSize: spec.inputSize, runtime, seed: 0 }, true);
        const result: CvBenchResult = { model: spec.model, runtime: runtimeLabel(runtime, engine), inputSize: spec.inputSize, epochs, folds: cv.folds.length, frames: built.rows.length, seconds: cv.wallSeconds };
        options.onResult?.(result);
        results.push(result);
      }
    }
    return results;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
