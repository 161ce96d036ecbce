// Shared by the model tests: small inputs per model and the backend that can run gradients.
import { tf } from '../../src/engine/index.js';
import { createRng } from '../../src/util/rng.js';

/** Smallest convenient input per model: vgg16's AvgPool 4×4 after five poolings needs 128. */
export function smallInputSize(name: string): [number, number] {
  return name === 'vgg16' ? [128, 128] : [64, 64];
}

/** Seeded random batch shaped [n, h, w, c]. */
export function randomBatch(n: number, [h, w]: [number, number], channels: number, seed: number): tf.Tensor4D {
  const rng = createRng(seed);
  const values = Float32Array.from({ length: n * h * w * channels }, () => rng.normal());
  return tf.tensor4d(values, [n, h, w, channels]);
}

/** One-hot labels 0, 1, 2, … cycling through the classes. */
export function oneHotLabels(n: number, numClasses: number): tf.Tensor2D {
  return tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % numClasses), 'int32'), numClasses) as tf.Tensor2D);
}
