// What happens after each epoch, as small handlers the epoch loop calls in order (MONAI's
// engine + handlers): the stop at a non-finite loss, the history file, model selection with early
// stopping, the learning-rate plateau rule, and the checkpoint that lets a killed run resume. Each
// handler keeps its own state, which the checkpoint stores and a resumed run restores.
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NonFiniteTrainingError } from '../errors.js';
import { readHistoryJsonl } from '../plots/history.js';
import type { BuiltModel } from '../models/types.js';
import { loadCheckpoint, saveCheckpoint, snapshotWeights, type WeightSnapshot } from './checkpoint.js';
import type { ScheduledAdam } from './optimizer.js';
import { EarlyStopping, ReduceLrOnPlateau } from './schedule.js';

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

/** What a handler sees after an epoch. */
export interface EpochEnd {
  log: EpochLog;
  built: BuiltModel;
  optimizer: ScheduledAdam;
}

export interface TrainingHandler {
  /** Where its state sits in the checkpoint (absent: nothing to keep). */
  readonly stateKey?: string;
  state?(): unknown;
  restore?(state: unknown): void;
  /** Called after every epoch, in the order of the handler list; `true` asks the loop to stop. */
  afterEpoch?(end: EpochEnd): boolean | void | Promise<boolean | void>;
}

/** history.jsonl: one line per finished epoch. */
export class HistoryHandler implements TrainingHandler {
  constructor(private readonly path: string) {}

  /** A fresh run starts an empty file; a resumed one keeps the epochs its checkpoint covers. */
  start(resumedAtEpoch: number | undefined): void {
    if (!existsSync(this.path)) return;
    if (resumedAtEpoch === undefined) {
      writeFileSync(this.path, '');
      return;
    }
    // readHistoryJsonl drops a last line cut by a kill and names the file for any other bad line.
    const kept = readHistoryJsonl(this.path).filter((entry) => entry.epoch <= resumedAtEpoch);
    writeFileSync(this.path, kept.map((entry) => JSON.stringify(entry) + '\n').join(''));
  }

  afterEpoch({ log }: EpochEnd): void {
    appendFileSync(this.path, JSON.stringify(log) + '\n');
  }
}

/**
 * Model selection on the validation split: keeps a copy of the weights of the best epoch (by
 * validation balanced accuracy) and stops when it has not improved for `patience` epochs.
 */
export class SelectionHandler implements TrainingHandler {
  readonly stateKey = 'early';
  private readonly early: EarlyStopping;
  best: WeightSnapshot | undefined;
  /** Whether the last epoch improved on the best (for the progress line). */
  improved = false;

  constructor(patience: number) {
    this.early = new EarlyStopping(patience);
  }

  get bestScore(): number {
    return this.early.best;
  }

  state(): unknown {
    return this.early.state();
  }

  restore(state: unknown): void {
    this.early.restore(state as ReturnType<EarlyStopping['state']>);
  }

  afterEpoch({ log, built }: EpochEnd): boolean {
    const { improved, stop } = this.early.update(log.valBalancedAccuracy, log.epoch);
    this.improved = improved;
    if (improved) {
      this.best?.dispose();
      this.best = snapshotWeights(built.model, log.epoch);
    }
    return stop;
  }

  /** Makes the model as it is now the selected one (a head fitted without epochs). */
  chooseCurrent(built: BuiltModel, score: number): void {
    this.best?.dispose();
    this.best = snapshotWeights(built.model, 0);
    this.early.restore({ best: score, bestEpoch: 0, wait: 0 });
  }

  dispose(): void {
    this.best?.dispose();
    this.best = undefined;
  }
}

/** Keras ReduceLROnPlateau on the validation loss; `scale` multiplies the scheduled rate. */
export class PlateauHandler implements TrainingHandler {
  readonly stateKey = 'plateau';
  private readonly plateau: ReduceLrOnPlateau;

  constructor(factor: number, patience: number) {
    this.plateau = new ReduceLrOnPlateau(factor, patience);
  }

  get scale(): number {
    return this.plateau.scale;
  }

  state(): unknown {
    return this.plateau.state();
  }

  restore(state: unknown): void {
    this.plateau.restore(state as ReturnType<ReduceLrOnPlateau['state']>);
  }

  afterEpoch({ log }: EpochEnd): void {
    this.plateau.update(log.valLoss);
  }
}

/** The checkpoint's state.json: the epoch it covers, each handler's state, and the stop flag. */
export interface CheckpointState {
  epoch: number;
  stoppedEarly: boolean;
  shuffleSeed: number;
  handlers: Record<string, unknown>;
}

/**
 * Saves the last epoch's weights, the optimiser's moments, the best weights and every handler's
 * state after each epoch (last in the handler list, so it sees the others' updates), and restores
 * them all when a run starts again in the same folder.
 */
export class CheckpointHandler {
  constructor(
    private readonly dir: string,
    private readonly handlers: readonly TrainingHandler[],
    private readonly selection: SelectionHandler,
    private readonly shuffleSeed: number,
  ) {}

  /** Restores a checkpoint if the folder holds one; returns what it covered. */
  async resume(built: BuiltModel, optimizer: ScheduledAdam): Promise<CheckpointState | undefined> {
    const loaded = await loadCheckpoint(this.dir, built, optimizer);
    if (!loaded) return undefined;
    const state = loaded.state as CheckpointState;
    for (const handler of this.handlers) {
      if (handler.stateKey && handler.restore && state.handlers?.[handler.stateKey] !== undefined) handler.restore(state.handlers[handler.stateKey]);
    }
    this.selection.best = loaded.best;
    return state;
  }

  /** `stopping` is the loop's decision for this epoch, which the others' answers have made. */
  async save(end: EpochEnd, stopping: boolean): Promise<void> {
    const handlers: Record<string, unknown> = {};
    for (const handler of this.handlers) if (handler.stateKey && handler.state) handlers[handler.stateKey] = handler.state();
    const state: CheckpointState = { epoch: end.log.epoch, stoppedEarly: stopping, shuffleSeed: this.shuffleSeed, handlers };
    await saveCheckpoint(this.dir, end.built, end.optimizer, state, this.selection.best);
  }
}

// Training stops at the first non-finite number instead of carrying it on: a NaN loss means the
// weights have diverged (or a checkpoint it resumed from was damaged), and every epoch after it
// would only write NaN checkpoints and a model that diagnoses nothing.
/**
 * First of the epoch handlers: stops the fold when an epoch's training or validation loss is NaN
 * or infinite, before the history, the selection or the checkpoint record anything of it.
 */
export class FiniteLossHandler implements TrainingHandler {
  /** Set when the run resumed from a checkpoint: then that checkpoint is the first suspect. */
  resumed = false;

  constructor(
    private readonly fold: number,
    private readonly checkpointDir: string,
    /** A refit has no validation split, so no validation loss to check. */
    private readonly hasValidation = true,
  ) {}

  afterEpoch({ log }: EpochEnd): void {
    this.check(log.loss, 'the training loss', log.epoch);
    if (this.hasValidation) this.check(log.valLoss, 'the validation loss', log.epoch);
  }

  private check(value: number, what: string, epoch: number): void {
    if (Number.isFinite(value)) return;
    const where = `fold ${this.fold}, epoch ${epoch + 1}: ${what} is ${value}`;
    if (this.resumed) {
      throw new NonFiniteTrainingError(
        `${where} after resuming from the checkpoint ${join(this.checkpointDir, 'state.json')}: it may be damaged; delete ${this.checkpointDir} to train this fold again from its first epoch`,
      );
    }
    throw new NonFiniteTrainingError(`${where}: the weights diverged; train again with a lower --lr (the last good checkpoint is in ${this.checkpointDir})`);
  }
}
