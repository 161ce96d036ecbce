// Throughput of one model on one runtime in this process. Forward passes that need no gradient
// (inference at batch 1 and 8, the frozen backbone that fills the feature cache) run on the chosen
// runtime (TF.js wasm or ONNX Runtime); the trainable part's step is always TF.js (it needs
// gradients). The full training step = frozen backbone forward on the runtime + head step on TF.js,
// which is what a step costs with the feature cache off (and the first epoch with it on).
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, type EngineInfo } from '../engine/index.js';
import { createModel } from '../models/registry.js';
import { disposeBuiltModel } from '../models/cut.js';
import '../models/index.js';
import { createForwardRunner, createOrtRunner, defaultOrtThreads, type ForwardRunner, type Runtime } from '../onnx/runtime.js';
import { quantizeModel } from '../onnx/calibrate.js';
import { croppingRunner } from '../train/feature_cache.js';
import { trainStep } from '../train/head_trainer.js';
import { cropHeadToUsedRegion } from '../models/feature_crop.js';
import { ScheduledAdam } from '../train/optimizer.js';
import { createRng } from '../util/rng.js';

export interface ModelBenchResult {
  model: string;
  /** 'tfjs-wasm' (or another TF.js backend) or 'ort'. */
  runtime: string;
  /** Threads of the runtime's forward passes (the TF.js head step uses the TF.js threads). */
  threads: number;
  inputShape: number[];
  inferenceBatch: number;
  trainBatch: number;
  /** Whole model, batch `inferenceBatch` (8). */
  inferenceImgPerSec: number;
  /** Whole model, batch 1 (one image at a time, as the server does). */
  inferenceBatch1ImgPerSec: number;
  /**
   * The int8 graph (predict/serve --precision int8) at batch 1 and `inferenceBatch`; ort only, else
   * null. Calibrated on a few of the bench's random frames: the speed does not depend on the ranges.
   */
  int8InferenceBatch1ImgPerSec: number | null;
  int8InferenceImgPerSec: number | null;
  /** Frozen backbone forward at batch `trainBatch` (what filling the feature cache costs); null when nothing is frozen. */
  featureCacheImgPerSec: number | null;
  /** Full training step: frozen backbone forward (this runtime) + trainable part forward/backward/update (TF.js). */
  trainImgPerSec: number;
  /** Step of the trainable part alone on cached features (TF.js; every epoch after the first with the cache). */
  trainCachedImgPerSec: number;
  /** Per example, the cached features the trainable part reads (cut to the region its head sees). */
  cachedFeatureShapes: number[][];
  peakRssMb: number;
}

/** How bench entries name a runtime: 'ort', or 'tfjs-' + the TF.js backend ('tfjs-wasm' here). */
export function runtimeLabel(runtime: Runtime, engine: EngineInfo): string {
  return runtime === 'ort' ? 'ort' : `tfjs-${engine.backend}`;
}

export interface MeasureOptions {
  runtime?: Runtime;
  inferenceBatch?: number;
  trainBatch?: number;
  /** Timed repetitions after one warm-up. */
  repeats?: number;
  inputSize?: [number, number];
}

/** Median seconds of `repeats` runs after one warm-up: a run slowed by another process counts once. */
async function timeIt(repeats: number, body: () => Promise<void>): Promise<number> {
  await body(); // warm-up: kernel set-up, session optimisation and first-call allocations
  const seconds: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    await body();
    seconds.push((performance.now() - started) / 1000);
  }
  seconds.sort((a, b) => a - b);
  const middle = seconds.length >> 1;
  return seconds.length % 2 === 1 ? seconds[middle]! : (seconds[middle - 1]! + seconds[middle]!) / 2;
}

export function peakRssMb(): number {
  // maxRSS is in kilobytes on Linux.
  return process.resourceUsage().maxRSS / 1024;
}

function randomBatch(n: number, shape: readonly number[], seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n * shape.reduce((a, b) => a * b, 1) }, () => rng.next());
}

export async function measureModel(name: string, options: MeasureOptions = {}): Promise<ModelBenchResult> {
  const engine = await initEngine();
  const runtime = options.runtime ?? 'tfjs';
  const inferenceBatch = options.inferenceBatch ?? 8;
  const trainBatch = options.trainBatch ?? 16;
  const repeats = options.repeats ?? 3;
  const built = createModel(name, { numClasses: 3, inputSize: options.inputSize });
  const [h, w] = built.cfg.inputSize;
  const inputShape = [h, w, built.cfg.channels];
  // Exported in memory: the bench measures running, not exporting or the cache.
  const runnerOptions = { runtime, cacheDir: false as const };
  const runners: ForwardRunner[] = [];
  try {
    const whole = await createForwardRunner(built.model, runnerOptions);
    runners.push(whole);
    const backbone = built.backbone ? await createForwardRunner(built.backbone, runnerOptions) : undefined;
    if (backbone) runners.push(backbone);

    const forward = (runner: ForwardRunner, batch: Float32Array, n: number) => async (): Promise<void> => {
      await runner.run(batch, n);
    };
    const infer8 = randomBatch(inferenceBatch, inputShape, 1);
    const infer8Seconds = await timeIt(repeats, forward(whole, infer8, inferenceBatch));
    const infer1 = randomBatch(1, inputShape, 2);
    const infer1Seconds = await timeIt(Math.max(repeats, 3), forward(whole, infer1, 1));

    let int8Seconds: { batch1: number; batch: number } | null = null;
    if (whole.runtime === 'ort') {
      const frameSize = inputShape.reduce((a, b) => a * b, 1);
      const frames = Array.from({ length: 4 }, (_, i) => infer8.subarray(i * frameSize, (i + 1) * frameSize));
      const { result } = await quantizeModel(built.model, frames, { method: 'minmax' });
      const int8 = await createOrtRunner(built.model, result.bytes);
      runners.push(int8);
      int8Seconds = {
        batch1: await timeIt(Math.max(repeats, 3), forward(int8, infer1, 1)),
        batch: await timeIt(repeats, forward(int8, infer8, inferenceBatch)),
      };
    }

    const trainX = randomBatch(trainBatch, inputShape, 3);
    const featureSeconds = backbone ? await timeIt(repeats, forward(backbone, trainX, trainBatch)) : null;

    const optimizer = new ScheduledAdam(1e-4);
    const labels = Array.from({ length: trainBatch }, (_, i) => i % 3);
    const featuresOf = async (runner = backbone): Promise<tf.Tensor[]> => {
      if (!runner) return [tf.tensor(trainX, [trainBatch, ...inputShape])];
      const outputs = await runner.run(trainX, trainBatch);
      return outputs.map((values, k) => tf.tensor(values, [trainBatch, ...runner.outputShapes[k]!]));
    };
    const trainSeconds = await timeIt(repeats, async () => {
      const features = await featuresOf();
      trainStep(built.head, optimizer, features, labels, 3);
      tf.dispose(features);
    });
    // As training does: the cache keeps only the part of the map the head reads (VGG-16: 9×9 of 14×14).
    const cropped = backbone ? cropHeadToUsedRegion(built.head) : undefined;
    const cached = await featuresOf(backbone && cropped ? croppingRunner(backbone, cropped.crops) : backbone);
    const cachedSeconds = await timeIt(repeats, async () => {
      trainStep(cropped?.head ?? built.head, optimizer, cached, labels, 3);
    });
    tf.dispose(cached);
    optimizer.dispose();

    return {
      model: name,
      runtime: runtimeLabel(whole.runtime, engine),
      threads: whole.runtime === 'ort' ? defaultOrtThreads() : engine.threads,
      inputShape,
      inferenceBatch,
      trainBatch,
      inferenceImgPerSec: inferenceBatch / infer8Seconds,
      inferenceBatch1ImgPerSec: 1 / infer1Seconds,
      int8InferenceBatch1ImgPerSec: int8Seconds && 1 / int8Seconds.batch1,
      int8InferenceImgPerSec: int8Seconds && inferenceBatch / int8Seconds.batch,
      featureCacheImgPerSec: featureSeconds === null ? null : trainBatch / featureSeconds,
      trainImgPerSec: trainBatch / trainSeconds,
      trainCachedImgPerSec: trainBatch / cachedSeconds,
      cachedFeatureShapes: (cropped?.head ?? built.head).inputs.map((input) => input.shape.slice(1) as number[]),
      peakRssMb: peakRssMb(),
    };
  } finally {
    await Promise.all(runners.map((r) => r.dispose()));
    disposeBuiltModel(built);
  }
}
