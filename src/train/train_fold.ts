// Trains one fold: dataset → split (validation by patient inside the training folds) → model →
// feature cache → epochs → best checkpoint by validation balanced accuracy → test predictions.
// The test fold is touched only once, after training, to write predictions.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initEngine } from '../engine/index.js';
import { createModel } from '../models/registry.js';
import '../models/index.js';
import { disposeBuiltModel } from '../models/cut.js';
import { writeJsonAtomicSync } from '../util/atomic.js';
import { PocovidError } from '../errors.js';
import { resolveTrainConfig, type TrainConfig, type TrainConfigInput } from './config.js';
import type { SharedFeatureStore } from './feature_cache.js';
import { headSources } from './head_sources.js';
import { predictHead, argmax } from './head_trainer.js';
import { ScheduledAdam } from './optimizer.js';
import { exampleWeights } from './loss.js';
import { createProgress, type ProgressReporter } from './progress.js';
import { loadTrainingData, trainingClasses, type FrameInputs } from './data_access.js';
import { restoreWeights } from './checkpoint.js';
import { applyInitialWeights, type WeightsUsed } from './initial_weights.js';
import type { BuiltModel } from '../models/types.js';
import { writeFoldOutputs, type CalibrationPredictions, type PredictionOut, type TrainFoldResult } from './outputs.js';
import { toolVersions } from './versions.js';
import { fitGuardOnRows } from '../guard/fit_dataset.js';
import { CheckpointHandler, FiniteLossHandler, HistoryHandler, PlateauHandler, SelectionHandler, type TrainingHandler } from './handlers.js';
import { runEpochs } from './epoch_loop.js';
import { fitLogisticHead, LOGISTIC_FILE, type LogisticData } from './logistic_head.js';
import { DEFAULT_PRETRAIN, pretrainVideoContrastive } from './pretrain_video.js';
import type { FoldData } from './data_access.js';
import type { HeadSources } from './head_sources.js';

/** The self-supervised pretraining's options and losses, in the fold folder. */
export const PRETRAIN_FILE = 'pretrain.json';

export type { EpochLog } from './handlers.js';
export type { TrainFoldResult } from './outputs.js';

export interface TrainFoldOptions {
  quiet?: boolean;
  progress?: ProgressReporter;
  /** Frozen-backbone features shared with the other folds of a cv. */
  featureStore?: SharedFeatureStore;
  /** More handlers, called after the built-in ones and before the checkpoint is saved. */
  handlers?: TrainingHandler[];
  /**
   * A model made by the caller instead of the registry's with the run's initial weights (`pocovid
   * update` continues from a saved model, possibly with a layer added); trainFold disposes it.
   */
  model?: (classes: string[]) => Promise<{ built: BuiltModel; weightsUsed: WeightsUsed }>;
}

/**
 * A logistic head learns from every training-fold frame: the training split's cached views and the
 * validation split's frames (their dataset folds are the inner folds that choose the penalty).
 */
function logisticData(features: NonNullable<HeadSources['features']>, data: FoldData, config: TrainConfig): LogisticData {
  const { train, validation, views } = features;
  if (train.shapes.length !== 1 || train.shapes[0]!.length !== 1) {
    throw new PocovidError(`a logistic head reads one pooled feature vector per frame; the cache holds ${train.shapes.map((s) => s.join('×')).join(', ')}`);
  }
  const d = train.shapes[0]![0]!;
  const rows = [...data.train.rows, ...data.validation.rows];
  const labels = [...data.train.labels, ...data.validation.labels];
  const frameWeights = exampleWeights(config.classWeights, labels, rows, data.classes.length) ?? labels.map(() => 1);
  const n = train.count + validation.count;
  const x = new Float32Array(n * d);
  x.set(train.data[0]!, 0);
  x.set(validation.data[0]!, train.count * d);
  const frameOf = logisticEntryFrame(features, data);
  // With the invariance penalty a training frame's views are not rows: the frame keeps its whole
  // weight, and each view points at it (entry e − e mod views). Otherwise the views share it.
  const invariance = config.invariance > 0 && views > 1;
  const isView = (e: number) => e < train.count && e % views !== 0;
  return {
    x,
    n,
    d,
    y: Int32Array.from({ length: n }, (_, e) => labels[frameOf(e)]!),
    weights: Float64Array.from({ length: n }, (_, e) => frameWeights[frameOf(e)]! / (e < train.count && !invariance ? views : 1)),
    group: Int32Array.from({ length: n }, (_, e) => rows[frameOf(e)]!.fold),
    scored: Uint8Array.from({ length: n }, (_, e) => (isView(e) ? 0 : 1)),
    ...(invariance ? { invariance: { weight: config.invariance, base: Int32Array.from({ length: n }, (_, e) => (isView(e) ? e - (e % views) : -1)) } } : {}),
  };
}

/**
 * The frame (index into train rows then validation rows) of a logistic entry: entry e < train.count
 * is view (e mod views) of training frame ⌊e / views⌋; then one entry per validation frame.
 */
function logisticEntryFrame(features: NonNullable<HeadSources['features']>, data: FoldData): (entry: number) => number {
  const { train, views } = features;
  return (e) => (e < train.count ? Math.floor(e / views) : data.train.count + (e - train.count));
}

export async function trainFold(input: TrainConfigInput, options: TrainFoldOptions = {}): Promise<TrainFoldResult> {
  const config = resolveTrainConfig(input);
  const engine = await initEngine();
  const progress = options.progress ?? createProgress(process.stderr, options.quiet);
  const out = resolve(config.out);
  mkdirSync(out, { recursive: true });

  const classes = trainingClasses(config);
  const provided = options.model ? await options.model(classes) : undefined;
  const built = provided?.built ?? createModel(config.model, {
    numClasses: classes.length,
    trainableLayers: config.trainableLayers,
    inputSize: config.inputSize,
    seed: config.seed,
    dropout: config.dropout,
    head: config.head === 'logistic' ? 'linear' : config.head,
    colour: config.colour,
    sector: config.sector,
    blur: config.inputBlur,
    antiAlias: config.antiAlias,
  });
  // Preprocessing comes from the built model's config (input size, colour) and nowhere else.
  const data = await loadTrainingData(config, built.cfg).catch((err: unknown) => {
    disposeBuiltModel(built);
    throw err;
  });
  const weightsUsed = provided?.weightsUsed ?? (await applyInitialWeights(built, config, progress));

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

  if (config.pretrain === 'video-contrastive') {
    // The training folds' frames only (train and validation splits); the test fold is not read.
    const settings = { ...DEFAULT_PRETRAIN, steps: config.pretrainSteps, seed: config.seed };
    const pretrained = await pretrainVideoContrastive(built, [data.train, data.validation], settings, progress).catch((err: unknown) => {
      disposeBuiltModel(built);
      throw err;
    });
    writeJsonAtomicSync(join(out, PRETRAIN_FILE), { ...settings, ...pretrained });
  }
  const sources = await headSources(built, data, config, progress, options.featureStore);
  const numClasses = classes.length;
  const weights = exampleWeights(config.classWeights, data.train.labels, data.train.rows, numClasses);

  const optimizer = new ScheduledAdam(config.lr);
  // A refit has no validation split: it neither stops early nor lowers the rate on a plateau,
  // and keeps its last epoch (the number of epochs comes from the cross-validation's folds).
  const patience = (value: number) => (config.refit ? Number.POSITIVE_INFINITY : value);
  const selection = new SelectionHandler(patience(config.earlyStoppingPatience));
  // A fold that fails part-way still releases the backbone runner (an ONNX session) and the tensors.
  try {
    const plateau = new PlateauHandler(config.plateauFactor, patience(config.plateauPatience));
    const history = new HistoryHandler(join(out, 'history.jsonl'));
    // First: an epoch whose loss is not finite stops the fold before anything of it is recorded.
    const finite = new FiniteLossHandler(config.fold, join(out, 'checkpoint'), !config.refit);
    const handlers: TrainingHandler[] = [finite, history, selection, plateau, ...(options.handlers ?? [])];
    const checkpoint = new CheckpointHandler(join(out, 'checkpoint'), handlers, selection, config.seed);
    let loop: Awaited<ReturnType<typeof runEpochs>>;
    let calibration: CalibrationPredictions | undefined;
    if (config.head === 'logistic') {
      // A convex fit on the cached features instead of epochs: nothing to checkpoint or resume.
      if (!sources.features) throw new PocovidError('a logistic head needs the frozen-feature cache (--feature-cache auto and a frozen backbone)');
      const fit = fitLogisticHead(sources.head, logisticData(sources.features, data, config), config.penalties, numClasses, join(out, LOGISTIC_FILE), { classBias: config.classBias });
      const chosen = fit.grid.find((g) => g.penalty === fit.penalty)!;
      progress.log(
        `logistic head: penalty ${fit.penalty} of ${fit.grid.length} (balanced accuracy ${chosen.innerBalancedAccuracy.toFixed(3)} over the training folds ${fit.innerFolds.join(',')} held out in turn` +
          (chosen.innerViewFlipRate !== undefined ? `; invariance ${fit.invariance}: views flip ${(100 * chosen.innerViewFlipRate).toFixed(1)}%, top probability moves ${chosen.innerViewTopProbChange!.toFixed(4)}` : '') +
          `), ${fit.seconds.toFixed(1)} s`,
      );
      selection.chooseCurrent(built, chosen.innerBalancedAccuracy);
      // The fit learned from the validation split too: the sets are calibrated on the training
      // frames' out-of-fold predictions of the penalty search instead (each by a fit that never saw it).
      const frameOf = logisticEntryFrame(sources.features, data);
      const rows = [...data.train.rows, ...data.validation.rows];
      const labels = [...data.train.labels, ...data.validation.labels];
      calibration = {
        calibratedOn: 'out-of-fold',
        predictions: fit.outOfFold.map(({ entry, probabilities }) => ({
          row: rows[frameOf(entry)]!,
          label: classes[labels[frameOf(entry)]!]!,
          predicted: classes[argmax(probabilities)]!,
          probabilities,
        })),
      };
      loop = { epochsRun: 0, stoppedEarly: false, trainSeconds: fit.seconds, trainedImages: sources.train.count };
    } else {
      const resumed = await checkpoint.resume(built, optimizer);
      finite.resumed = resumed !== undefined;
      history.start(resumed?.epoch);
      if (resumed) progress.log(`resuming ${out} at epoch ${resumed.epoch + 2}`);

      loop = await runEpochs({
        config,
        built,
        sources,
        optimizer,
        numClasses,
        exampleWeights: weights,
        handlers,
        plateau,
        selection,
        checkpoint,
        progress,
        startEpoch: resumed ? resumed.epoch + 1 : 0,
        stoppedEarly: resumed?.stoppedEarly ?? false,
      });
    }

    if (selection.best) restoreWeights(built.model, selection.best);
    const testProbs = await predictHead(sources.head, sources.test, sources.cacheRng, config.batchSize);
    // Otherwise the validation split's predictions calibrate the prediction sets (writeFoldOutputs).
    calibration ??= {
      calibratedOn: 'validation',
      predictions: predictionsOf(data.validation, classes, await predictHead(sources.head, sources.validation, sources.cacheRng, config.batchSize)),
    };
    await sources.dispose();
    const testPredictions = predictionsOf(data.test, classes, testProbs);
    const result: TrainFoldResult = {
      out,
      config,
      classes,
      bestEpoch: selection.best?.epoch ?? -1,
      bestValBalancedAccuracy: selection.bestScore,
      epochsRun: loop.epochsRun,
      stoppedEarly: loop.stoppedEarly,
      featureCacheSeconds: sources.cacheSeconds,
      featureEntries: sources.featureEntries,
      trainSeconds: loop.trainSeconds,
      trainImgPerSec: loop.trainSeconds > 0 ? loop.trainedImages / loop.trainSeconds : 0,
      testPredictions,
    };
    // The not-ultrasound guard learns what the training frames look like (train + validation).
    const guard = await fitGuardOnRows(config.data, [...data.train.rows, ...data.validation.rows]);
    await writeFoldOutputs(out, built, result, guard, calibration);
    return result;
  } finally {
    await sources.dispose();
    selection.dispose();
    optimizer.dispose();
    disposeBuiltModel(built);
  }
}

function predictionsOf(part: FrameInputs, classes: string[], probabilities: Float32Array[]): PredictionOut[] {
  return part.rows.map((row, i) => ({
    row,
    label: classes[part.labels[i]!]!,
    predicted: classes[argmax(probabilities[i]!)]!,
    probabilities: Array.from(probabilities[i]!),
  }));
}

export class TrainingError extends PocovidError {}
