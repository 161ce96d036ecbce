// Training stops at the first non-finite number instead of carrying it on: a NaN loss means the
// weights have diverged (or a checkpoint it resumed from was damaged), and every epoch after it
// would only write NaN checkpoints and a model that diagnoses nothing.
import { join } from 'node:path';
import { BadInputError, NonFiniteTrainingError } from '../errors.js';
import type { TensorMap } from '../models/weights/tensors.js';
import type { EpochEnd, TrainingHandler } from './handlers.js';

/** Throws BadInputError naming `file` when a tensor read from it holds NaN or an infinity. */
export function checkFiniteTensors(tensors: TensorMap, file: string, hint: string): void {
  for (const [name, tensor] of tensors) {
    const at = tensor.data.findIndex((v) => !Number.isFinite(v));
    if (at >= 0) throw new BadInputError(file, `damaged: tensor "${name}" holds ${tensor.data[at]} at index ${at}; ${hint}`);
  }
}

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
