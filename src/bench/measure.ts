// Throughput of one model in this process: inference (batch 8 by default), a full training step
// (frozen backbone forward + trainable part forward/backward/update, batch 16) and a step of the
// trainable part alone on cached features (what epochs after the first cost with the feature cache).
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../engine/index.js';
import { createModel } from '../models/registry.js';
import '../models/index.js';
import { trainStep } from '../train/head_trainer.js';
import { ScheduledAdam } from '../train/optimizer.js';

export interface ModelBenchResult {
  model: string;
  runtime: string;
  inputShape: number[];
  inferenceBatch: number;
  trainBatch: number;
  inferenceImgPerSec: number;
  trainImgPerSec: number;
  trainCachedImgPerSec: number;
  peakRssMb: number;
}

export interface MeasureOptions {
  inferenceBatch?: number;
  trainBatch?: number;
  /** Timed repetitions after one warm-up. */
  repeats?: number;
  inputSize?: [number, number];
}

async function timeIt(repeats: number, body: () => Promise<void>): Promise<number> {
  await body(); // warm-up: kernel set-up and first-call allocations
  const started = performance.now();
  for (let i = 0; i < repeats; i++) await body();
  return (performance.now() - started) / 1000 / repeats;
}

export function peakRssMb(): number {
  // maxRSS is in kilobytes on Linux.
  return process.resourceUsage().maxRSS / 1024;
}

export async function measureModel(name: string, options: MeasureOptions = {}): Promise<ModelBenchResult> {
  const engine = await initEngine();
  const inferenceBatch = options.inferenceBatch ?? 8;
  const trainBatch = options.trainBatch ?? 16;
  const repeats = options.repeats ?? 3;
  const built = createModel(name, { numClasses: 3, inputSize: options.inputSize });
  const [h, w] = built.cfg.inputSize;
  const inputShape = [h, w, built.cfg.channels];

  const inferX = tf.randomUniform([inferenceBatch, ...inputShape]);
  const inferSeconds = await timeIt(repeats, async () => {
    const y = built.model.predict(inferX) as tf.Tensor;
    await y.data();
    y.dispose();
  });
  inferX.dispose();

  const optimizer = new ScheduledAdam(1e-4);
  const labels = Array.from({ length: trainBatch }, (_, i) => i % 3);
  const trainX = tf.randomUniform([trainBatch, ...inputShape]);
  const featuresOf = (x: tf.Tensor): tf.Tensor[] => {
    if (!built.backbone) return [x.clone()];
    const y = built.backbone.predict(x);
    return Array.isArray(y) ? y : [y];
  };
  const trainSeconds = await timeIt(repeats, async () => {
    const features = featuresOf(trainX);
    trainStep(built.head, optimizer, features, labels, 3);
    tf.dispose(features);
  });
  const cached = featuresOf(trainX);
  const cachedSeconds = await timeIt(repeats, async () => {
    trainStep(built.head, optimizer, cached, labels, 3);
  });
  tf.dispose([...cached, trainX]);
  optimizer.dispose();
  built.model.dispose();

  return {
    model: name,
    runtime: `tfjs-${engine.backend}`,
    inputShape,
    inferenceBatch,
    trainBatch,
    inferenceImgPerSec: inferenceBatch / inferSeconds,
    trainImgPerSec: trainBatch / trainSeconds,
    trainCachedImgPerSec: trainBatch / cachedSeconds,
    peakRssMb: peakRssMb(),
  };
}
