// Adam whose learning rate can change between steps (Keras-style decay and ReduceLROnPlateau).
// tfjs' AdamOptimizer reads `this.learningRate` on every step but keeps it protected.
import * as tf from '@tensorflow/tfjs-core';

export class ScheduledAdam extends tf.AdamOptimizer {
  constructor(learningRate: number) {
    super(learningRate, 0.9, 0.999, 1e-7);
  }

  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }

  getLearningRate(): number {
    return this.learningRate;
  }
}
