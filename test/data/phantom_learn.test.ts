// The phantom is learnable: a tiny CNN trained for a few epochs on rendered phantom frames
// classifies frames of scenes it has never seen. Frames are rendered in memory (the ffmpeg
// path from phantom videos to a dataset is covered by build.test.ts) to keep this test short.
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { PHANTOM_CLASSES, renderPhantomFrame, samplePhantomScene } from '../../src/data/phantom.js';
import { initEngine, tf } from '../../src/engine/index.js';
import { pixelsToInput } from '../../src/models/preprocess.js';
import type { PretrainedCfg } from '../../src/models/types.js';
import { createRng } from '../../src/util/rng.js';

const SIZE = 64;
const cfg: PretrainedCfg = { id: 'phantom.tiny', inputSize: [SIZE, SIZE], channels: 1, channelOrder: 'rgb', mean: [0.2], std: [0.25], camLayer: '', classifier: '', featureLayer: '', sources: [] };

/** scenesPerClass new scenes per class, `frames` frames each (motion between frames). */
function render(seed: number, scenesPerClass: number, frames: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const rng = createRng(seed);
  const inputs: Float32Array[] = [];
  const labels: number[] = [];
  for (let s = 0; s < scenesPerClass; s++) {
    PHANTOM_CLASSES.forEach((label, k) => {
      const sceneRng = rng.fork();
      const scene = samplePhantomScene(label, SIZE, sceneRng);
      for (let t = 0; t < frames; t++) {
        inputs.push(pixelsToInput(renderPhantomFrame(scene, t * 3, sceneRng), cfg));
        labels.push(k);
      }
    });
  }
  const x = new Float32Array(inputs.length * SIZE * SIZE);
  inputs.forEach((input, i) => x.set(input, i * SIZE * SIZE));
  const y = new Float32Array(labels.length * 3);
  labels.forEach((k, i) => (y[i * 3 + k] = 1));
  return { x: tf.tensor4d(x, [inputs.length, SIZE, SIZE, 1]), y: tf.tensor2d(y, [labels.length, 3]) };
}

describe('phantom', () => {
  it('is learned by a small CNN (>90% accuracy on unseen scenes)', async () => {
    await initEngine();
    const t0 = Date.now();
    const train = render(1, 24, 2);
    const test = render(2, 20, 1);
    const t1 = Date.now();
    const model = tfl.sequential();
    const he = (seed: number) => tfl.initializers.heNormal({ seed });
    model.add(tfl.layers.conv2d({ inputShape: [SIZE, SIZE, 1], filters: 8, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: he(1) }));
    model.add(tfl.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: he(2) }));
    model.add(tfl.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: he(3) }));
    model.add(tfl.layers.flatten({}));
    model.add(tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) }));
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    await model.fit(train.x, train.y, { epochs: 24, batchSize: 32, shuffle: false, verbose: 0 /* tfjs shuffles with Math.random; rows are already class-interleaved */ });
    const accuracy = tf.tidy(() => {
      const predicted = tf.argMax(model.predict(test.x) as tf.Tensor, -1);
      return tf.mean(tf.equal(predicted, tf.argMax(test.y, -1))).dataSync()[0]!;
    });
    tf.dispose([train.x, train.y, test.x, test.y]);
    model.dispose();
    console.log(`phantom: ${train.x.shape[0]} training frames, ${test.x.shape[0]} test frames of unseen scenes, accuracy ${(accuracy * 100).toFixed(1)}%; render ${t1 - t0} ms, train+test ${Date.now() - t1} ms`);
    expect(accuracy).toBeGreaterThan(0.9);
  });
});
