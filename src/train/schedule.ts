// Learning-rate schedule and stopping rules, as in POCOVID-Net's Keras training but driven by
// the VALIDATION split (the original monitored the test fold, which leaks the test set into
// model selection).

/** Keras Adam with `decay`: lr_t = base / (1 + decay * iterations). */
export function decayedLearningRate(base: number, decay: number, iterations: number): number {
  return base / (1 + decay * iterations);
}

/** Keras ReduceLROnPlateau(monitor='val_loss', factor, patience, min_lr). */
export class ReduceLrOnPlateau {
  private best = Number.POSITIVE_INFINITY;
  private wait = 0;
  /** Multiplier applied to the base learning rate. */
  scale = 1;

  constructor(
    private readonly factor: number,
    private readonly patience: number,
    private readonly minScale = 1e-3,
  ) {}

  /** Returns true when the rate was reduced at this epoch. */
  update(valLoss: number): boolean {
    if (valLoss < this.best - 1e-4) {
      this.best = valLoss;
      this.wait = 0;
      return false;
    }
    this.wait += 1;
    if (this.wait >= this.patience && this.scale > this.minScale) {
      this.scale = Math.max(this.scale * this.factor, this.minScale);
      this.wait = 0;
      return true;
    }
    return false;
  }

  state(): { best: number; wait: number; scale: number } {
    return { best: this.best, wait: this.wait, scale: this.scale };
  }

  restore(s: { best: number; wait: number; scale: number }): void {
    this.best = s.best;
    this.wait = s.wait;
    this.scale = s.scale;
  }
}

/** Stops when the monitored score (higher is better) has not improved for `patience` epochs. */
export class EarlyStopping {
  best = Number.NEGATIVE_INFINITY;
  bestEpoch = -1;
  private wait = 0;

  constructor(private readonly patience: number) {}

  /** Returns { improved, stop }. Ties keep the earlier epoch. */
  update(score: number, epoch: number): { improved: boolean; stop: boolean } {
    if (score > this.best) {
      this.best = score;
      this.bestEpoch = epoch;
      this.wait = 0;
      return { improved: true, stop: false };
    }
    this.wait += 1;
    return { improved: false, stop: this.wait >= this.patience };
  }

  state(): { best: number; bestEpoch: number; wait: number } {
    return { best: this.best, bestEpoch: this.bestEpoch, wait: this.wait };
  }

  restore(s: { best: number; bestEpoch: number; wait: number }): void {
    this.best = s.best;
    this.bestEpoch = s.bestEpoch;
    this.wait = s.wait;
  }
}
