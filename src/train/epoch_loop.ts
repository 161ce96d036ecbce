// The epoch loop over the trainable part: shuffle, optimiser steps, validation, then the handlers
// (history, selection, plateau, checkpoint…) in order. It reads no files and decides nothing about
// stopping or saving itself; the handlers do.
import * as tf from '@tensorflow/tfjs-core';
import type { BuiltModel } from '../models/types.js';
import { createRng } from '../util/rng.js';
import type { TrainConfig } from './config.js';
import type { CheckpointHandler, EpochEnd, EpochLog, PlateauHandler, SelectionHandler, TrainingHandler } from './handlers.js';
import { meanCrossEntropy, predictHead, selectionMetrics, trainStep } from './head_trainer.js';
import type { HeadSources } from './head_sources.js';
import type { ScheduledAdam } from './optimizer.js';
import type { ProgressReporter } from './progress.js';
import { decayedLearningRate } from './schedule.js';

export interface EpochLoopOptions {
  config: TrainConfig;
  built: BuiltModel;
  sources: HeadSources;
  optimizer: ScheduledAdam;
  numClasses: number;
  /** Loss weight of each training example (absent: all equal). */
  exampleWeights?: readonly number[];
  /** Every handler in call order; `plateau` and `selection` are among them. */
  handlers: readonly TrainingHandler[];
  plateau: PlateauHandler;
  selection: SelectionHandler;
  checkpoint: CheckpointHandler;
  progress: ProgressReporter;
  startEpoch: number;
  /** A resumed run whose checkpoint says it had stopped early runs no more epochs. */
  stoppedEarly: boolean;
}

export interface EpochLoopResult {
  /** Index one past the last epoch run (= epochs run in all, a resumed run's included). */
  epochsRun: number;
  stoppedEarly: boolean;
  /** This process's training time and images (a resumed run counts only its own epochs). */
  trainSeconds: number;
  trainedImages: number;
}

export async function runEpochs(options: EpochLoopOptions): Promise<EpochLoopResult> {
  const { config, built, sources, optimizer, numClasses, exampleWeights, handlers, plateau, selection, checkpoint, progress } = options;
  const stepsPerEpoch = Math.ceil(sources.train.count / config.batchSize);
  const decay = config.lrDecay === 'original' ? config.lr / config.epochs : 0;
  let trainSeconds = 0;
  let trainedImages = 0;
  let stoppedEarly = options.stoppedEarly;
  let epoch = options.startEpoch;
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
      const result = trainStep(sources.head, optimizer, inputs, labels, numClasses, {
        sampleWeights: exampleWeights ? indices.map((i) => exampleWeights[i]!) : undefined,
        labelSmoothing: config.labelSmoothing,
        mixup: config.mixup > 0 ? { alpha: config.mixup, rng: epochRng } : undefined,
        weightDecay: config.weightDecay,
      });
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
    const end: EpochEnd = { log, built, optimizer };
    for (const handler of handlers) {
      if ((await handler.afterEpoch?.(end)) === true) stoppedEarly = true;
    }
    progress.stop(
      `epoch ${epoch + 1}/${config.epochs} loss ${log.loss.toFixed(4)} acc ${log.accuracy.toFixed(3)} | val loss ${valLoss.toFixed(4)} acc ${val.accuracy.toFixed(3)} bal ${val.balancedAccuracy.toFixed(3)}${selection.improved ? ' *' : ''} | lr ${log.lr.toExponential(2)} | ${log.imgPerSec.toFixed(0)} img/s`,
    );
    await checkpoint.save(end, stoppedEarly);
  }
  return { epochsRun: epoch, stoppedEarly, trainSeconds, trainedImages };
}
