// Typed errors: each names the bad value and, where there is a fixed set, the valid choices.
// The CLI prints `message` alone for these (no stack trace): they are the user's to fix.

export class PocovidError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A name that is not one of a fixed set (model, method, runtime...). */
export class UnknownChoiceError extends PocovidError {
  constructor(what: string, value: string, valid: readonly string[]) {
    super(`unknown ${what} "${value}"; valid: ${valid.join(', ')}`);
  }
}

/** A file that could not be used; always names the file and the problem. */
export class BadInputError extends PocovidError {
  constructor(readonly file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
  }
}

/** Weights that do not fit a model: lists every unmatched and unset tensor. */
export class WeightMismatchError extends PocovidError {}

/** Something that needs the network when there is none. */
export class OfflineError extends PocovidError {}

/**
 * A model whose output is not a probability vector (NaN, infinite, out of range): its weights are
 * damaged or diverged. Never turned into a label; the server answers it with 500.
 */
export class ModelOutputError extends PocovidError {
  constructor(readonly member: string, readonly frame: number, readonly problem: string) {
    super(`model ${member} gave no usable probabilities for frame ${frame} (${problem}): its weights are damaged or diverged; no diagnosis was made`);
  }
}

/** Training met a NaN or infinite loss: it stops rather than write checkpoints of a diverged model. */
export class NonFiniteTrainingError extends PocovidError {}
