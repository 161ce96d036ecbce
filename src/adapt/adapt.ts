// Adapting a model to a site's own labelled files, where they are: the page's "Adapt to my data"
// panel runs this in its model worker, so no image leaves the device. It trains the same part that
// `pocovid update` trains (src/train/update.ts):
//   head:      the part the model trained (its saved `trainable` flags: for the default recipe, the
//              classifier on the frozen pooled features);
//   new-layer: a Dense layer before the classifier, starting as the identity (src/models/insert_layer.ts),
//              the only one trained;
// with the trainer's own step (src/train/head_trainer.ts: Adam, weighted cross-entropy) on frozen
// features computed once, every file weighing the same within its class and every class the same
// (the recipe's `source` weights). Whole files or patients are held back (split.ts) and scored with
// the same forward pass before and after; the prediction sets are recalibrated on them.
//
// Before is the model as shipped (every member starts from its own files, whatever was adapted
// earlier): an adaptation replaces the previous one rather than stacking on it.
// Browser-safe: TF.js and plain TypeScript.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { chunksOf } from '../decision/classify.js';
import { argMax, meanVector } from '../decision/combine.js';
import { calibrate, minimumCalibrationSize, DEFAULT_COVERAGE, type ConformalCalibration, type LabelledProbabilities } from '../eval/conformal.js';
import { confusionMatrix, metricsFromConfusion } from '../eval/metrics.js';
import { PocovidError } from '../errors.js';
import { layersModelFromFiles, type LayersFiles } from '../model_dir/layers_io.js';
import { cutModel, disposeBuiltModel, freezeAllButLast } from '../models/cut.js';
import { sameTrunk } from '../models/same_trunk.js';
import { insertLayerBeforeClassifier, type UpdateMode } from '../models/insert_layer.js';
import type { PretrainedCfg } from '../models/types.js';
import { trainStep } from '../train/head_trainer.js';
import { groupBalancedWeights } from '../train/loss.js';
import { ScheduledAdam } from '../train/optimizer.js';
import { createKeyedRng } from '../util/rng.js';
import { DEFAULT_HELD_OUT_FRACTION, holdOut } from './split.js';

export interface AdaptSettings {
  mode: UpdateMode;
  epochs: number;
  /** Adam learning rate. */
  lr: number;
  batchSize: number;
  /** Seeds the hold-out and the order of the training examples. */
  seed: number;
  /** Share of each class's files (or patients) held back to score before and after. */
  heldOutFraction: number;
}

/**
 * What an adaptation does unless told otherwise, for a mode and the width of the classifier's input
 * (the new layer is width × width). The learning rates were set on real frames (bench/adapt_page.ts,
 * README): a head of 1024 × 3 weights learns well at 0.003, but a new 1024 × 1024 layer sums a
 * thousand Adam steps into each output and collapsed every held-back frame into one class at 0.0003
 * and above, and learned at 0.0001; grayscale_cnn's 64-wide new layer learned at 0.003 and not at
 * 0.0001. So the new layer's rate is 0.1 / width (at most 0.003): each output moves by about the
 * same whatever the width.
 */
export function defaultAdaptSettings(mode: UpdateMode, width: number): AdaptSettings {
  const lr = mode === 'head' ? 3e-3 : Math.min(3e-3, Number((0.1 / Math.max(1, width)).toPrecision(2)));
  return { mode, epochs: 40, lr, batchSize: 16, seed: 0, heldOutFraction: DEFAULT_HELD_OUT_FRACTION };
}

/** One labelled file: its frames as model inputs (src/models/preprocess.ts clipInputs). */
export interface AdaptFile {
  name: string;
  label: string;
  /** Held back together (src/adapt/labels.ts): the file itself, or its patient folder. */
  group: string;
  kind: 'image' | 'video';
  inputs: Float32Array[];
}

export interface Scores {
  n: number;
  accuracy: number;
  balancedAccuracy: number;
  /** Rows: true class, columns: predicted, in the model's class order. */
  confusion: number[][];
}

export interface AdaptResult {
  classes: string[];
  settings: AdaptSettings;
  /** On the held-back frames, by the model as shipped and as adapted. */
  before: Scores;
  after: Scores;
  /** The same per held-back file (a video: the mean of its frames, as the video decision). */
  filesBefore: Scores;
  filesAfter: Scores;
  trainFrames: number;
  heldOutFrames: number;
  trainFiles: string[];
  heldOutFiles: string[];
  /** Held-back frames and videos the prediction sets were recalibrated on, and the fewest a set needs. */
  calibration: { frames: number; videos: number; needed: number; coverage: number };
  seconds: number;
}

/** The trained weights of one member, by their names in the model. */
export interface MemberWeights {
  /** The layer new-layer mode inserted (its name is part of the weights' names). */
  addedLayer?: string;
  weights: { name: string; shape: number[]; values: Float32Array }[];
}

/** A member ready to adapt or adapted: the flat model (what decides) and its cut. */
export interface AdaptableMember {
  model: tfl.LayersModel;
  backbone?: tfl.LayersModel;
  head: tfl.LayersModel;
  addedLayer?: string;
}

export interface AdaptHooks {
  /** Awaited after every batch of features and every epoch; throwing from it cancels. */
  onProgress?: (stage: 'features' | 'training', done: number, total: number) => void | Promise<void>;
  /** Milliseconds clock (performance.now in the page). */
  now?: () => number;
}

/** The member built from its files, with the new layer in new-layer mode, cut at what trains. */
export async function adaptableMember(base: LayersFiles, classifier: string, mode: UpdateMode): Promise<AdaptableMember> {
  const edited = mode === 'new-layer' ? insertLayerBeforeClassifier(base, classifier) : undefined;
  const model = await layersModelFromFiles(edited?.files ?? base);
  try {
    // The saved trainable flags say what trains; frozen BatchNorm must run in inference mode.
    freezeAllButLast(model, [], 0);
    const { backbone, head } = cutModel(model);
    return { model, head, ...(backbone ? { backbone } : {}), ...(edited ? { addedLayer: edited.layer } : {}) };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** The trainable part's weights, to keep or to store (src/adapt/record.ts). */
export function trainedWeights(member: AdaptableMember): MemberWeights {
  return {
    ...(member.addedLayer ? { addedLayer: member.addedLayer } : {}),
    weights: member.head.trainableWeights.map((w) => ({ name: w.originalName, shape: [...w.shape] as number[], values: Float32Array.from(w.read().dataSync() as Float32Array) })),
  };
}

/** Writes stored weights into an adaptable member: every trainable weight, by name and shape. */
export function setTrainedWeights(member: AdaptableMember, stored: MemberWeights): void {
  if ((stored.addedLayer ?? '') !== (member.addedLayer ?? '')) {
    throw new PocovidError(`the adaptation was made with layer "${stored.addedLayer ?? 'none'}" but the model gives "${member.addedLayer ?? 'none'}"`);
  }
  const byName = new Map(stored.weights.map((w) => [w.name, w]));
  const targets = member.head.trainableWeights;
  const missing = targets.filter((w) => !byName.has(w.originalName)).map((w) => w.originalName);
  const unknown = [...byName.keys()].filter((name) => !targets.some((w) => w.originalName === name));
  if (missing.length > 0 || unknown.length > 0) {
    throw new PocovidError(`the adaptation does not fit this model: ${missing.length ? `no weights for ${missing.join(', ')}` : ''}${missing.length && unknown.length ? '; ' : ''}${unknown.length ? `weights for unknown ${unknown.join(', ')}` : ''}`);
  }
  for (const target of targets) {
    const w = byName.get(target.originalName)!;
    if (w.shape.join('×') !== target.shape.join('×') || w.values.length !== w.shape.reduce((a, b) => a * b, 1)) {
      throw new PocovidError(`the adaptation's ${w.name} is ${w.shape.join('×')} (${w.values.length} values); the model's is ${target.shape.join('×')}`);
    }
    if (!w.values.every(Number.isFinite)) throw new PocovidError(`the adaptation's ${w.name} holds a value that is not finite`);
  }
  for (const target of targets) {
    const w = byName.get(target.originalName)!;
    const value = tf.tensor(w.values, w.shape);
    target.write(value); // assigns a copy
    value.dispose();
  }
}

/** The head's inputs for every example, stacked (one tensor per tensor the cut hands the head). */
async function headInputs(member: AdaptableMember, inputs: readonly Float32Array[], shape: [number, number, number], onBatch: (n: number) => Promise<void>): Promise<tf.Tensor[]> {
  const batches: tf.Tensor[][] = [];
  try {
    for (const chunk of chunksOf(inputs, shape, 8)) {
      batches.push(
        tf.tidy(() => {
          const x = tf.tensor4d(chunk.flat, [chunk.n, ...shape]);
          if (!member.backbone) return [x];
          const out = member.backbone.predict(x);
          return Array.isArray(out) ? out : [out];
        }),
      );
      await onBatch(chunk.n);
    }
    return batches[0]!.map((_, t) => tf.concat(batches.map((b) => b[t]!)));
  } finally {
    tf.dispose(batches.flat());
  }
}

/** The head's probabilities (inference mode) for the examples at `indices`. */
function headProbabilities(head: tfl.LayersModel, features: readonly tf.Tensor[], indices: readonly number[]): number[][] {
  if (indices.length === 0) return [];
  return tf.tidy(() => {
    const at = tf.tensor1d([...indices], 'int32');
    const inputs = features.map((f) => tf.gather(f, at));
    return (head.predict(inputs.length === 1 ? inputs[0]! : inputs) as tf.Tensor).arraySync() as number[][];
  });
}

function scores(truth: readonly number[], probabilities: readonly (readonly number[])[], classes: number): Scores {
  const confusion = confusionMatrix(truth, probabilities.map((p) => argMax(p)), classes);
  const m = metricsFromConfusion(confusion);
  return { n: truth.length, accuracy: m.accuracy, balancedAccuracy: m.balancedAccuracy, confusion };
}

/** Per file: the mean of its frames' probabilities (the video decision's default). */
function fileMeans(frameProbs: readonly (readonly number[])[], frameFile: readonly number[], files: readonly number[]): number[][] {
  return files.map((f) => meanVector(frameProbs.filter((_, i) => frameFile[i] === f) as number[][]));
}

/**
 * Adapts every member of a model to `files` and scores it before and after on the held-back files.
 * Returns the adapted members (the caller owns them), their trained weights, the result and the
 * prediction sets' new calibration.
 */
export async function adaptModel(
  base: readonly LayersFiles[],
  model: { classes: readonly string[]; cfg: PretrainedCfg; conformal?: ConformalCalibration },
  files: readonly AdaptFile[],
  settings: AdaptSettings = defaultAdaptSettings('head', 0),
  hooks: AdaptHooks = {},
): Promise<{ members: AdaptableMember[]; weights: MemberWeights[]; result: AdaptResult; conformal: ConformalCalibration }> {
  const now = hooks.now ?? (() => Date.now());
  const started = now();
  const { classes, cfg } = model;
  for (const f of files) {
    if (!classes.includes(f.label)) throw new PocovidError(`${f.name}: class "${f.label}" is not one of the model's (${classes.join(', ')})`);
    if (f.inputs.length === 0) throw new PocovidError(`${f.name}: no frame to adapt on`);
  }
  const split = holdOut(files, settings.heldOutFraction, settings.seed);
  // Frames in file order: the training files' frames first, then the held-back ones.
  const order = [...split.train, ...split.heldOut];
  const frameFile: number[] = [];
  const inputs: Float32Array[] = [];
  for (const f of order) for (const x of files[f]!.inputs) {
    frameFile.push(f);
    inputs.push(x);
  }
  const labelOf = (f: number): number => classes.indexOf(files[f]!.label);
  const heldSet = new Set(split.heldOut);
  const trainIdx = frameFile.flatMap((f, i) => (heldSet.has(f) ? [] : [i]));
  const heldIdx = frameFile.flatMap((f, i) => (heldSet.has(f) ? [i] : []));
  const trainLabels = trainIdx.map((i) => labelOf(frameFile[i]!));
  const heldLabels = heldIdx.map((i) => labelOf(frameFile[i]!));
  // Every file weighs the same within its class, every class the same (the recipe's `source` weights).
  const sampleWeights = groupBalancedWeights(trainLabels, trainIdx.map((i) => String(frameFile[i])));
  const shape: [number, number, number] = [cfg.inputSize[0], cfg.inputSize[1], cfg.channels];
  const totalFeatures = inputs.length * base.length;
  const totalSteps = settings.epochs * base.length;
  let featuresDone = 0;
  let epochsDone = 0;

  const members: AdaptableMember[] = [];
  const before: number[][][] = [];
  const after: number[][][] = [];
  // Members whose frozen part is the same (a fold ensemble's shared backbone) share its features.
  let firstFeatures: tf.Tensor[] | undefined;
  try {
    for (const [m, files_m] of base.entries()) {
      const member = await adaptableMember(files_m, cfg.classifier, settings.mode);
      members.push(member);
      const reuse = firstFeatures !== undefined && members[0]!.backbone !== undefined && member.backbone !== undefined && sameTrunk(members[0]!.backbone, member.backbone);
      const features = reuse
        ? firstFeatures!
        : await headInputs(member, inputs, shape, async (n) => {
            featuresDone += n;
            await hooks.onProgress?.('features', featuresDone, totalFeatures);
          });
      if (m === 0) firstFeatures = features;
      if (reuse) {
        featuresDone += inputs.length;
        await hooks.onProgress?.('features', featuresDone, totalFeatures);
      }
      try {
        before.push(headProbabilities(member.head, features, heldIdx));
        const optimizer = new ScheduledAdam(settings.lr);
        const rng = createKeyedRng(settings.seed, `adapt:member-${m}`);
        try {
          for (let epoch = 0; epoch < settings.epochs; epoch++) {
            const shuffled = rng.shuffle(trainIdx.map((_, j) => j));
            for (let start = 0; start < shuffled.length; start += settings.batchSize) {
              const batch = shuffled.slice(start, start + settings.batchSize);
              const at = tf.tensor1d(batch.map((j) => trainIdx[j]!), 'int32');
              const batchInputs = features.map((f) => tf.gather(f, at));
              at.dispose();
              try {
                const step = trainStep(member.head, optimizer, batchInputs, batch.map((j) => trainLabels[j]!), classes.length, { sampleWeights: batch.map((j) => sampleWeights[j]!) });
                if (!Number.isFinite(step.loss)) throw new PocovidError(`member ${m}: the training loss became ${step.loss} at epoch ${epoch + 1}; try a smaller learning rate`);
              } finally {
                tf.dispose(batchInputs);
              }
            }
            epochsDone++;
            await hooks.onProgress?.('training', epochsDone, totalSteps);
          }
        } finally {
          optimizer.dispose();
        }
        after.push(headProbabilities(member.head, features, heldIdx));
      } finally {
        if (features !== firstFeatures) tf.dispose(features);
      }
    }
  } catch (err) {
    members.forEach(disposeBuiltModel);
    throw err;
  } finally {
    if (firstFeatures) tf.dispose(firstFeatures);
  }

  // The ensemble's frame probabilities: the mean of its members', as the decision core combines them.
  const ensemble = (perMember: number[][][]): number[][] => heldIdx.map((_, i) => meanVector(perMember.map((rows) => rows[i]!)));
  const [frameBefore, frameAfter] = [ensemble(before), ensemble(after)];
  const heldFrameFile = heldIdx.map((i) => frameFile[i]!);
  const heldFiles = split.heldOut;
  const [fileBefore, fileAfter] = [fileMeans(frameBefore, heldFrameFile, heldFiles), fileMeans(frameAfter, heldFrameFile, heldFiles)];
  const fileLabels = heldFiles.map(labelOf);

  // The sets are recalibrated on the held-back part, with the model's own score rule and coverage.
  const rule = model.conformal;
  const videos = heldFiles.flatMap((f, j) => (files[f]!.kind === 'video' ? [{ probabilities: fileAfter[j]!, label: fileLabels[j]! }] : []));
  const framesCal: LabelledProbabilities[] = frameAfter.map((p, i) => ({ probabilities: p, label: heldLabels[i]! }));
  const coverage = rule?.coverage ?? DEFAULT_COVERAGE;
  const conformal = calibrate(
    { frame: framesCal, ...(videos.length > 0 ? { video: videos } : {}) },
    { classes, coverage, calibratedOn: 'held-out', ...(rule ? { method: rule.method, lambda: rule.lambda, kReg: rule.kReg } : {}) },
  );
  const result: AdaptResult = {
    classes: [...classes],
    settings: { ...settings },
    before: scores(heldLabels, frameBefore, classes.length),
    after: scores(heldLabels, frameAfter, classes.length),
    filesBefore: scores(fileLabels, fileBefore, classes.length),
    filesAfter: scores(fileLabels, fileAfter, classes.length),
    trainFrames: trainIdx.length,
    heldOutFrames: heldIdx.length,
    trainFiles: split.train.map((f) => files[f]!.name),
    heldOutFiles: heldFiles.map((f) => files[f]!.name),
    calibration: { frames: framesCal.length, videos: videos.length, needed: minimumCalibrationSize(coverage), coverage },
    seconds: (now() - started) / 1000,
  };
  return { members, weights: members.map(trainedWeights), result, conformal };
}
