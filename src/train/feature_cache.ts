// The frozen-backbone feature cache. The frozen part of a network never changes during training,
// so it runs once per image (once per augmented view when augmentation is on) and every epoch
// trains only the trainable part on the stored features. On a CPU this is the difference between
// hours and minutes: the backbone is >90% of the FLOPs of every model in the zoo.
import * as tf from '@tensorflow/tfjs-core';
import type { ForwardRunner } from '../onnx/index.js';
import { cropFeatureMaps, type FeatureCrop } from '../models/feature_crop.js';

/** Features of `count` entries; one flat array per backbone output (the head's inputs). */
export interface FeatureSet {
  count: number;
  /** Shape of one entry per output, without the batch dimension. */
  shapes: number[][];
  data: Float32Array[];
}

/** Produces the network input (H×W×C, preprocessed) of entry i. */
export type InputProvider = (index: number) => Promise<Float32Array>;

export interface FeatureCacheOptions {
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Runs the frozen backbone (inference mode; ONNX Runtime or TF.js behind `backbone`, see src/onnx)
 * over `count` inputs and stores its outputs. A backbone may have several outputs (ResNet-18's cut
 * has two): one FeatureSet array each.
 */
export async function computeFeatures(backbone: ForwardRunner, count: number, input: InputProvider, options: FeatureCacheOptions = {}): Promise<FeatureSet> {
  const batchSize = options.batchSize ?? 16;
  const shapes = backbone.outputShapes.map((s) => [...s]);
  const entrySizes = shapes.map(sizeOf);
  const data = entrySizes.map((n) => new Float32Array(n * count));
  const pixels = sizeOf([...backbone.inputShape]);
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const batch = new Float32Array(n * pixels);
    for (let i = 0; i < n; i++) batch.set(await input(start + i), i * pixels);
    const outputs = await backbone.run(batch, n);
    for (let k = 0; k < outputs.length; k++) data[k]!.set(outputs[k]!, start * entrySizes[k]!);
    options.onProgress?.(start + n, count);
  }
  return { count, shapes, data };
}

/** The inputs of the trainable part for the given entries, as tensors (caller disposes). */
export function gatherFeatures(features: FeatureSet, indices: number[]): tf.Tensor[] {
  return features.shapes.map((shape, k) => {
    const size = sizeOf(shape);
    const source = features.data[k]!;
    const out = new Float32Array(indices.length * size);
    indices.forEach((entry, i) => out.set(source.subarray(entry * size, (entry + 1) * size), i * size));
    return tf.tensor(out, [indices.length, ...shape]);
  });
}

/** Approximate size in bytes (for the log: the cache is held in memory). */
export function featureBytes(features: FeatureSet): number {
  return features.data.reduce((sum, d) => sum + d.byteLength, 0);
}

/** `runner` whose outputs are cut to `crops` (one per output; undefined keeps that output whole). */
export function croppingRunner(runner: ForwardRunner, crops: readonly (FeatureCrop | undefined)[]): ForwardRunner {
  const outputShapes = runner.outputShapes.map((shape, k) => {
    const crop = crops[k];
    return crop ? [crop.height, crop.width, ...shape.slice(2)] : shape;
  });
  return {
    runtime: runner.runtime,
    inputShape: runner.inputShape,
    outputShapes,
    async run(batch, n) {
      const outputs = await runner.run(batch, n);
      return outputs.map((values, k) => {
        const crop = crops[k];
        return crop ? cropFeatureMaps(values, n, runner.outputShapes[k]!, crop) : values;
      });
    },
    dispose: () => runner.dispose(),
  };
}

/**
 * Features shared by the folds of one cross-validation. Every fold freezes the same backbone (same
 * seed or weights file), and an image's augmented views are drawn from a stream of its own
 * (seed, path, view), so a frame's features are the same in every fold that uses it: the backbone
 * runs once per (image, view) for the whole cv instead of once per fold (5× less for 5 folds).
 * The fingerprint (backbone weights, crop, preprocessing, augmentation) guards against reuse
 * across folds that differ after all; a mismatch empties the store.
 */
export interface SharedFeatureStore {
  fingerprint: string | undefined;
  entries: Map<string, Float32Array[]>;
  /**
   * Files behind the memory, for folds trained in other processes or on other machines (queue
   * workers on a shared disk, a resumed sweep): entries missing from memory are looked up there
   * first, and what is computed is written there too. Absent: memory only (one local cv).
   */
  backing?: FeatureBacking;
}

/** Persistent storage of one fingerprint's entries at a time (see feature_disk.ts). */
export interface FeatureBacking {
  /** Entries are read and written under `fingerprint` from now on. */
  claim(fingerprint: string): void;
  /** The entry's outputs (one array of sizes[k] values per output), or undefined when absent or unusable. */
  read(key: string, sizes: readonly number[]): Float32Array[] | undefined;
  write(key: string, values: readonly Float32Array[]): void;
}

export function createFeatureStore(backing?: FeatureBacking): SharedFeatureStore {
  return { fingerprint: undefined, entries: new Map(), ...(backing ? { backing } : {}) };
}

/** Makes `store` hold features for `fingerprint` only (emptied when it held another's). */
export function claimFeatureStore(store: SharedFeatureStore, fingerprint: string): void {
  if (store.fingerprint === fingerprint) return;
  store.fingerprint = fingerprint;
  store.entries.clear();
  store.backing?.claim(fingerprint);
}

export interface KeyedInput {
  /** Identifies the entry's features: the same key always gives the same features. */
  key: string;
  input: () => Promise<Float32Array>;
}

/**
 * computeFeatures through `store`: entries whose key is there are copied, the others run through
 * the backbone and are added. Returns the fold's FeatureSet and how many entries were reused.
 */
export async function computeFeaturesThrough(
  store: SharedFeatureStore,
  backbone: ForwardRunner,
  entries: KeyedInput[],
  options: FeatureCacheOptions = {},
): Promise<{ features: FeatureSet; reused: number }> {
  if (store.backing) {
    const sizes = backbone.outputShapes.map((shape) => sizeOf([...shape]));
    for (const entry of entries) {
      if (store.entries.has(entry.key)) continue;
      const stored = store.backing.read(entry.key, sizes);
      if (stored) store.entries.set(entry.key, stored);
    }
  }
  const missing = entries.filter((entry) => !store.entries.has(entry.key));
  const reused = entries.length - missing.length;
  // Progress counts every entry, the reused ones first.
  const computed = await computeFeatures(backbone, missing.length, (i) => missing[i]!.input(), {
    ...options,
    onProgress: (done) => options.onProgress?.(reused + done, entries.length),
  });
  const sizes = computed.shapes.map(sizeOf);
  missing.forEach((entry, i) => {
    const values = computed.data.map((data, k) => data.slice(i * sizes[k]!, (i + 1) * sizes[k]!));
    store.entries.set(entry.key, values);
    store.backing?.write(entry.key, values);
  });
  const data = sizes.map((size) => new Float32Array(size * entries.length));
  entries.forEach((entry, i) => {
    store.entries.get(entry.key)!.forEach((values, k) => data[k]!.set(values, i * sizes[k]!));
  });
  return { features: { count: entries.length, shapes: computed.shapes, data }, reused };
}
