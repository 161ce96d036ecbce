// Trains one fold: dataset → split (validation by patient inside the training folds) → model →
// feature cache → epochs → best checkpoint by validation balanced accuracy → test predictions.
// The test fold is touched only once, after training, to write predictions.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../engine/index.js';
import { createModel } from '../models/registry.js';
import { disposeBuiltModel } from '../models/cut.js';
import { cropHeadToUsedRegion, type FeatureCrop } from '../models/feature_crop.js';
import type { BuiltModel } from '../models/types.js';
import { createKeyedRng, createRng, type Rng } from '../util/rng.js';
import { writeJsonAtomicSync } from '../util/atomic.js';
import { PocovidError } from '../errors.js';
import { resolveTrainConfig, type TrainConfig, type TrainConfigInput } from './config.js';
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
import { predictHead, meanCrossEntropy, selectionMetrics, trainStep, argmax, type HeadInputSource } from './head_trainer.js';
import { ScheduledAdam } from './optimizer.js';
import { decayedLearningRate, EarlyStopping, ReduceLrOnPlateau } from './schedule.js';
import { balancedClassWeights } from './loss.js';
import { createProgress, type ProgressReporter } from './progress.js';
import { loadTrainingData, type FoldData, type FrameInputs } from './data_access.js';
import { saveCheckpoint, loadCheckpoint, snapshotWeights, restoreWeights, type WeightSnapshot } from './checkpoint.js';
import { applyInitialWeights } from './initial_weights.js';
import { writeFoldOutputs, type PredictionOut } from './outputs.js';
import { toolVersions } from './versions.js';
import { fitGuardOnRows } from '../guard/fit_dataset.js';
import { createForwardRunner, type ForwardRunner } from '../onnx/index.js';

export interface EpochLog {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number;
  valAccuracy: number;
  valBalancedAccuracy: number;
  lr: number;
  imgPerSec: number;
  seconds: number;
}

export interface TrainFoldResult {
  out: string;
  config: TrainConfig;
  classes: string[];
  bestEpoch: number;
  bestValBalancedAccuracy: number;
  epochsRun: number;
  stoppedEarly: boolean;
  featureCacheSeconds: number;
  /** Backbone outputs this fold computed, and those it took from earlier folds of the same cv. */
  featureEntries: { computed: number; reused: number };
  trainSeconds: number;
  trainImgPerSec: number;
  testPredictions: PredictionOut[];
}

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

/** What a frame's cached features depend on besides its path and view (see SharedFeatureStore). */
function backboneFingerprint(built: BuiltModel, config: TrainConfig, crops: readonly (FeatureCrop | undefined)[] | undefined): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ data: resolve(config.data), model: built.name, cfg: built.cfg, augment: config.augment, seed: config.seed, crops }));
  for (const weight of built.backbone?.weights ?? []) {
    hash.update(weight.originalName);
    const values = weight.read().dataSync() as Float32Array;
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return hash.digest('hex');
}

async function headSources(
  built: BuiltModel,
  data: FoldData,
  config: TrainConfig,
  progress: ProgressReporter,
  featureStore: SharedFeatureStore | undefined,
): Promise<{ head: tfl.LayersModel; train: HeadInputSource; validation: HeadInputSource; test: HeadInputSource; cacheSeconds: number; featureEntries: { computed: number; reused: number }; cacheRng: Rng; dispose: () => Promise<void> }> {
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
    validation: cachedSource(valFeatures, data.validation.labels, 1, false),
    test: cachedSource(testFeatures, data.test.labels, 1, false),
    cacheSeconds: (Date.now() - started) / 1000,
    featureEntries,
    cacheRng,
    dispose,
  };
}

interface ResumeState {
  epoch: number;
  lrScale: number;
  plateau: ReturnType<ReduceLrOnPlateau['state']>;
  early: ReturnType<EarlyStopping['state']>;
  shuffleSeed: number;
  stoppedEarly: boolean;
}

export interface TrainFoldOptions {
  quiet?: boolean;
  progress?: ProgressReporter;
  /** Frozen-backbone features shared with the other folds of a cv. */
  featureStore?: SharedFeatureStore;
}

export async function trainFold(input: TrainConfigInput, options: TrainFoldOptions = {}): Promise<TrainFoldResult> {
  const config = resolveTrainConfig(input);
  const engine = await initEngine();
  const progress = options.progress ?? createProgress(process.stderr, options.quiet);
  const out = resolve(config.out);
  mkdirSync(out, { recursive: true });

  const data = await loadTrainingData(config);
  const classes = data.classes;
  const built = createModel(config.model, {
    numClasses: classes.length,
    trainableLayers: config.trainableLayers,
    inputSize: config.inputSize,
    seed: config.seed,
    dropout: config.dropout,
  });
  const weightsUsed = await applyInitialWeights(built, config, progress);

  writeJsonAtomicSync(join(out, 'config.json'), {
    ...config,
    classes,
    resolvedModel: { name: built.name, cfg: built.cfg, trainableLayers: built.trainableLayers, numClasses: built.numClasses },
    weightsUsed,
    split: { train: data.train.count, validation: data.validation.count, test: data.test.count, validationPatients: data.validationPatients },
    engine,
    tools: toolVersions(),
    note: 'TF.js Dropout masks are drawn from its own unseeded generator; everything else (split, shuffling, augmentation, init) follows `seed`.',
  });

  const sources = await headSources(built, data, config, progress, options.featureStore);
  const numClasses = classes.length;
  const classWeightValues = config.classWeights === 'balanced' ? balancedClassWeights(data.train.labels, numClasses) : undefined;
  const classWeights = classWeightValues ? tf.tensor1d(classWeightValues) : undefined;

  const optimizer = new ScheduledAdam(config.lr);
  let best: WeightSnapshot | undefined;
  // A fold that fails part-way still releases the backbone runner (an ONNX session) and the tensors.
  try {
    const plateau = new ReduceLrOnPlateau(config.plateauFactor, config.plateauPatience);
    const early = new EarlyStopping(config.earlyStoppingPatience);
    const stepsPerEpoch = Math.ceil(sources.train.count / config.batchSize);
    const decay = config.lrDecay === 'original' ? config.lr / config.epochs : 0;
    const historyPath = join(out, 'history.jsonl');
    const checkpointDir = join(out, 'checkpoint');

    let startEpoch = 0;
    let stoppedEarly = false;
    const resumed = await loadCheckpoint(checkpointDir, built, optimizer);
    if (resumed) {
      const state = resumed.state as ResumeState;
      startEpoch = state.epoch + 1;
      plateau.restore(state.plateau);
      early.restore(state.early);
      stoppedEarly = state.stoppedEarly;
      best = resumed.best;
      // Keep only the epochs that the checkpoint covers.
      if (existsSync(historyPath)) {
        const kept = readFileSync(historyPath, 'utf8').split('\n').filter((l) => l.trim() && (JSON.parse(l) as EpochLog).epoch <= state.epoch);
        writeFileSync(historyPath, kept.map((l) => l + '\n').join(''));
      }
      progress.log(`resuming ${out} at epoch ${startEpoch + 1}`);
    } else if (existsSync(historyPath)) {
      writeFileSync(historyPath, '');
    }

    let trainedImages = 0;
    let trainSeconds = 0;
    let epoch = startEpoch;
    for (; epoch < config.epochs && !stoppedEarly; epoch++) {
      // A stream per epoch, derived from the seed: a resumed run shuffles exactly as an uninterrupted one.
      const epochRng = createRng(config.seed * 1000003 + epoch);
      const order = epochRng.shuffle(Array.from({ length: sources.train.count }, (_, i) => i));
      const epochStarted = Date.now();
      let lossSum = 0;
      let correct = 0;
      progress.start(`epoch ${epoch + 1}/${config.epochs}`, sources.train.count);
      for (let step = 0; step < stepsPerEpoch; step++) {
        const indices = order.slice(step * config.batchSize, (step + 1) * config.batchSize);
        const lr = decayedLearningRate(config.lr, decay, optimizer.iterations) * plateau.scale;
        optimizer.setLearningRate(lr);
        const inputs = await sources.train.inputs(indices, epochRng);
        const labels = indices.map((i) => sources.train.labels[i]!);
        const result = trainStep(sources.head, optimizer, inputs, labels, numClasses, classWeights);
        tf.dispose(inputs);
        lossSum += result.loss * indices.length;
        correct += result.correct;
        const done = Math.min((step + 1) * config.batchSize, sources.train.count);
        progress.update(done, { loss: lossSum / done, acc: correct / done, lr });
      }
      const seconds = (Date.now() - epochStarted) / 1000;
      trainSeconds += seconds;
      trainedImages += sources.train.count;

      const valProbs = await predictHead(sources.head, sources.validation, epochRng, config.batchSize);
      const valLoss = meanCrossEntropy(valProbs, sources.validation.labels);
      const val = selectionMetrics(valProbs, sources.validation.labels, numClasses);
      const log: EpochLog = {
        epoch,
        loss: lossSum / sources.train.count,
        accuracy: correct / sources.train.count,
        valLoss,
        valAccuracy: val.accuracy,
        valBalancedAccuracy: val.balancedAccuracy,
        lr: optimizer.getLearningRate(),
        imgPerSec: sources.train.count / seconds,
        seconds,
      };
      appendFileSync(historyPath, JSON.stringify(log) + '\n');
      const { improved, stop } = early.update(val.balancedAccuracy, epoch);
      if (improved) {
        best?.dispose();
        best = snapshotWeights(built.model, epoch);
      }
      plateau.update(valLoss);
      stoppedEarly = stop;
      progress.stop(
        `epoch ${epoch + 1}/${config.epochs} loss ${log.loss.toFixed(4)} acc ${log.accuracy.toFixed(3)} | val loss ${valLoss.toFixed(4)} acc ${val.accuracy.toFixed(3)} bal ${val.balancedAccuracy.toFixed(3)}${improved ? ' *' : ''} | lr ${log.lr.toExponential(2)} | ${log.imgPerSec.toFixed(0)} img/s`,
      );
      const state: ResumeState = { epoch, lrScale: plateau.scale, plateau: plateau.state(), early: early.state(), shuffleSeed: config.seed, stoppedEarly };
      await saveCheckpoint(checkpointDir, built, optimizer, state, best);
    }

    if (best) restoreWeights(built.model, best);
    const testProbs = await predictHead(sources.head, sources.test, sources.cacheRng, config.batchSize);
    await sources.dispose();
    const testPredictions: PredictionOut[] = data.test.rows.map((row, i) => ({
      row,
      label: classes[data.test.labels[i]!]!,
      predicted: classes[argmax(testProbs[i]!)]!,
      probabilities: Array.from(testProbs[i]!),
    }));
    const result: TrainFoldResult = {
      out,
      config,
      classes,
      bestEpoch: best?.epoch ?? -1,
      bestValBalancedAccuracy: early.best,
      epochsRun: epoch,
      stoppedEarly,
      featureCacheSeconds: sources.cacheSeconds,
      featureEntries: sources.featureEntries,
      trainSeconds,
      trainImgPerSec: trainSeconds > 0 ? trainedImages / trainSeconds : 0,
      testPredictions,
    };
    // The not-ultrasound guard learns what the training frames look like (train + validation).
    const guard = await fitGuardOnRows(config.data, [...data.train.rows, ...data.validation.rows]);
    await writeFoldOutputs(out, built, result, guard);
    return result;
  } finally {
    await sources.dispose();
    best?.dispose();
    classWeights?.dispose();
    optimizer.dispose();
    disposeBuiltModel(built);
  }
}

export class TrainingError extends PocovidError {}
