// Where the trainable part's inputs come from: the frozen-backbone feature cache (computed once
// per image and augmented view, shared by the folds of a cv) or, with the cache off or no frozen
// backbone, the images themselves run through the backbone at every step.
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { cropHeadToUsedRegion, type FeatureCrop } from '../models/feature_crop.js';
import type { BuiltModel } from '../models/types.js';
import { createKeyedRng, createRng, type Rng } from '../util/rng.js';
import type { TrainConfig } from './config.js';
import {
  claimFeatureStore,
  computeFeaturesThrough,
  createFeatureStore,
  croppingRunner,
  featureBytes,
  gatherFeatures,
  type FeatureSet,
  type SharedFeatureStore,
} from './feature_cache.js';
import type { HeadInputSource } from './head_trainer.js';
import type { ProgressReporter } from './progress.js';
import type { FoldData, FrameInputs } from './data_access.js';
import { createForwardRunner, type ForwardRunner } from '../onnx/runtime.js';

/** Head inputs from the feature cache: entry = image * views + view; one view drawn per image per epoch. */
function cachedSource(features: FeatureSet, labels: number[], views: number, pickView: boolean): HeadInputSource {
  return {
    count: labels.length,
    labels,
    async inputs(indices, rng) {
      const entries = indices.map((i) => i * views + (pickView ? rng.int(views) : 0));
      return gatherFeatures(features, entries);
    },
  };
}

/** Head inputs computed now: load (and augment) the images, then run the frozen backbone if any. */
function liveSource(built: BuiltModel, backbone: ForwardRunner | undefined, frames: FrameInputs, labels: number[], augment: boolean): HeadInputSource {
  const [h, w] = built.cfg.inputSize;
  const shape = [h, w, built.cfg.channels];
  return {
    count: labels.length,
    labels,
    async inputs(indices, rng) {
      const batch = new Float32Array(indices.length * h * w * built.cfg.channels);
      for (let i = 0; i < indices.length; i++) {
        batch.set(await frames.input(indices[i]!, augment ? rng : undefined), i * h * w * built.cfg.channels);
      }
      if (!backbone) return [tf.tensor(batch, [indices.length, ...shape])];
      const outputs = await backbone.run(batch, indices.length);
      return outputs.map((values, k) => tf.tensor(values, [indices.length, ...backbone.outputShapes[k]!]));
    },
  };
}

/**
 * Where a dataset's frames really are: a refolded dataset (data refold) links to its original's
 * frames, so every fold seed shares the cached features of the same frames.
 */
function framesLocation(data: string): string {
  const frames = join(data, 'frames');
  return existsSync(frames) ? realpathSync(frames) : resolve(data);
}

/** What a frame's cached features depend on besides its path and view (see SharedFeatureStore). */
function backboneFingerprint(built: BuiltModel, config: TrainConfig, crops: readonly (FeatureCrop | undefined)[] | undefined): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ data: framesLocation(config.data), model: built.name, cfg: built.cfg, augment: config.augment, augmentation: config.augmentation, seed: config.seed, crops }));
  for (const weight of built.backbone?.weights ?? []) {
    hash.update(weight.originalName);
    const values = weight.read().dataSync() as Float32Array;
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return hash.digest('hex');
}

export interface HeadSources {
  head: tfl.LayersModel;
  train: HeadInputSource;
  validation: HeadInputSource;
  test: HeadInputSource;
  cacheSeconds: number;
  featureEntries: { computed: number; reused: number };
  cacheRng: Rng;
  /** The cached features themselves (absent when the cache is off): train has `views` entries per frame. */
  features?: { train: FeatureSet; validation: FeatureSet; test: FeatureSet; views: number };
  dispose: () => Promise<void>;
}

export async function headSources(
  built: BuiltModel,
  data: FoldData,
  config: TrainConfig,
  progress: ProgressReporter,
  featureStore: SharedFeatureStore | undefined,
): Promise<HeadSources> {
  const cacheRng = createRng(config.seed + 1);
  // The frozen backbone's forward pass needs no gradient: ONNX Runtime where config.runtime allows.
  const backbone = built.backbone ? await createForwardRunner(built.backbone, { runtime: config.runtime }) : undefined;
  // Idempotent: trainFold releases the runner after the test predictions and again on any way out.
  let released = false;
  const dispose = async (): Promise<void> => {
    if (released) return;
    released = true;
    await backbone?.dispose();
  };
  if (!backbone || config.featureCache !== 'auto') {
    return {
      head: built.head,
      train: liveSource(built, backbone, data.train, data.train.labels, config.augment),
      validation: liveSource(built, backbone, data.validation, data.validation.labels, false),
      test: liveSource(built, backbone, data.test, data.test.labels, false),
      cacheSeconds: 0,
      featureEntries: { computed: 0, reused: 0 },
      cacheRng,
      dispose,
    };
  }
  const views = config.augment ? config.views : 1;
  const started = Date.now();
  // Store only the part of the feature map the head can see (VGG-16: 9×9 of 14×14) and train the
  // head rebuilt on it: same weights, same outputs, a third of the trainable conv's work.
  const cropped = cropHeadToUsedRegion(built.head, { seed: config.seed });
  const featureRunner = cropped ? croppingRunner(backbone, cropped.crops) : backbone;
  if (cropped) {
    const kept = cropped.crops.map((crop, k) => (crop ? `${crop.height}×${crop.width} of ${backbone.outputShapes[k]!.slice(0, 2).join('×')}` : 'whole'));
    progress.log(`feature cache keeps the region the head reads: ${kept.join(', ')}`);
  }
  // Folds of one cv share a store (see SharedFeatureStore); a lone fold gets its own.
  const store = featureStore ?? createFeatureStore();
  claimFeatureStore(store, backboneFingerprint(built, config, cropped?.crops));
  const featureEntries = { computed: 0, reused: 0 };
  const cache = async (label: string, frames: FrameInputs, nViews: number, augment: boolean): Promise<FeatureSet> => {
    const total = frames.count * nViews;
    progress.start(`features ${label}`, total);
    // Each augmented view of each frame draws from its own stream: its features are the same in
    // every fold and whatever the batch size.
    const entries = Array.from({ length: total }, (_, entry) => {
      const index = Math.floor(entry / nViews);
      const view = augment ? entry % nViews : 0;
      const key = `${frames.rows[index]!.path}#${view}`;
      return { key, input: () => frames.input(index, view === 0 ? undefined : createKeyedRng(config.seed, key)) };
    });
    const { features, reused } = await computeFeaturesThrough(store, featureRunner, entries, {
      // ONNX Runtime is as fast or faster one image at a time (VGG-16: 172 vs 201 ms per image at
      // batch 8, the activations stay in cache); TF.js gains from batches.
      batchSize: featureRunner.runtime === 'ort' ? 1 : config.batchSize,
      onProgress: (done) => progress.update(done),
    });
    featureEntries.computed += total - reused;
    featureEntries.reused += reused;
    const shared = reused > 0 ? `, ${reused} from earlier folds` : '';
    progress.stop(`features ${label}: ${total} entries${shared}, ${(featureBytes(features) / 2 ** 20).toFixed(0)} MiB`);
    return features;
  };
  // View 0 of every image is the un-augmented frame, so the model also sees the original.
  const trainFeatures = await cache('train', data.train, views, config.augment);
  const valFeatures = await cache('validation', data.validation, 1, false);
  const testFeatures = await cache('test', data.test, 1, false);
  return {
    head: cropped?.head ?? built.head,
    train: cachedSource(trainFeatures, data.train.labels, views, views > 1),
    features: { train: trainFeatures, validation: valFeatures, test: testFeatures, views },
    validation: cachedSource(valFeatures, data.validation.labels, 1, false),
    test: cachedSource(testFeatures, data.test.labels, 1, false),
    cacheSeconds: (Date.now() - started) / 1000,
    featureEntries,
    cacheRng,
    dispose,
  };
}
