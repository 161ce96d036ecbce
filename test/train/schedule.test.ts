import { describe, expect, it } from 'vitest';
import { decayedLearningRate, EarlyStopping, ReduceLrOnPlateau } from '../../src/train/schedule.js';

describe('learning-rate schedule', () => {
  it('follows Keras Adam decay: lr / (1 + decay * iterations)', () => {
    // POCOVID-Net: lr 1e-4, decay lr/epochs = 1e-4/40 = 2.5e-6; after 1000 steps: 1e-4 / 1.0025.
    expect(decayedLearningRate(1e-4, 2.5e-6, 0)).toBe(1e-4);
    expect(decayedLearningRate(1e-4, 2.5e-6, 1000)).toBeCloseTo(1e-4 / 1.0025, 12);
  });

  it('reduces on a plateau of the validation loss after `patience` epochs, then waits again', () => {
    const plateau = new ReduceLrOnPlateau(0.7, 2);
    expect(plateau.update(1.0)).toBe(false);
    expect(plateau.update(1.0)).toBe(false); // wait 1
    expect(plateau.update(1.1)).toBe(true); // wait 2 → reduce
    expect(plateau.scale).toBeCloseTo(0.7);
    expect(plateau.update(1.05)).toBe(false);
    expect(plateau.update(1.02)).toBe(true);
    expect(plateau.scale).toBeCloseTo(0.49);
    expect(plateau.update(0.5)).toBe(false); // improvement resets
    expect(plateau.scale).toBeCloseTo(0.49);
  });

  it('restores its state exactly (resumed runs)', () => {
    const a = new ReduceLrOnPlateau(0.5, 3);
    a.update(1);
    a.update(2);
    const b = new ReduceLrOnPlateau(0.5, 3);
    b.restore(a.state());
    expect(b.update(2)).toBe(a.update(2));
    expect(b.state()).toEqual(a.state());
  });

  it('early stopping keeps the first best epoch and stops after patience epochs without improvement', () => {
    const early = new EarlyStopping(2);
    expect(early.update(0.5, 0)).toEqual({ improved: true, stop: false });
    expect(early.update(0.5, 1)).toEqual({ improved: false, stop: false });
    expect(early.update(0.6, 2)).toEqual({ improved: true, stop: false });
    expect(early.update(0.4, 3)).toEqual({ improved: false, stop: false });
    expect(early.update(0.6, 4)).toEqual({ improved: false, stop: true });
    expect(early.bestEpoch).toBe(2);
  });
});
