// The head rebuilt on the part of the feature map it can see: found exactly, equal outputs, equal
// training steps, and refused wherever a crop would not be a drop-in (global pooling, Flatten,
// spatial batch statistics).
import { beforeAll, describe, expect, it } from 'vitest';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine, tf } from '../../src/engine/index.js';
import { createModel, cutModel, disposeBuiltModel } from '../../src/models/index.js';
import { cropFeatureMaps, cropHeadToUsedRegion } from '../../src/models/feature_crop.js';
import { trainStep } from '../../src/train/head_trainer.js';
import { ScheduledAdam } from '../../src/train/optimizer.js';

beforeAll(async () => {
  await initEngine();
});

type Tail = 'valid-avg-pool' | 'global-avg-pool' | 'flatten' | 'spatial-batchnorm';

/**
 * input 10×10×2 → frozen conv → trainable conv 3×3 same → [tail]. With 'valid-avg-pool' the head
 * is POCOVID-Net's VGG tail in miniature: max-pool 2 (5×5) then a 4×4 valid average pool that
 * reads the top-left 4×4, i.e. conv outputs 0..7, i.e. rows and columns 0..8 of the head's input.
 */
function tinyModel(tail: Tail, seed = 3): tfl.LayersModel {
  const init = (s: number) => tfl.initializers.glorotUniform({ seed: seed * 10 + s });
  const input = tfl.input({ shape: [10, 10, 2] });
  const frozen = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', kernelInitializer: init(1), name: 'frozen', trainable: false }).apply(input) as tfl.SymbolicTensor;
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2), name: 'trainable_conv' }).apply(frozen) as tfl.SymbolicTensor;
  if (tail === 'spatial-batchnorm') x = tfl.layers.batchNormalization({ name: 'bn' }).apply(x) as tfl.SymbolicTensor;
  if (tail === 'global-avg-pool') {
    x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  } else if (tail === 'flatten') {
    x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  } else {
    x = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.averagePooling2d({ poolSize: 4, padding: 'valid' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  }
  const output = tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(3), name: 'classifier' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output });
}

function weightsOf(model: tfl.LayersModel): Map<string, Float32Array> {
  return new Map(model.trainableWeights.map((w) => [w.originalName.replace(/^[^/]*\//, ''), w.read().dataSync() as Float32Array]));
}

describe('cropFeatureMaps', () => {
  it('copies the window of every map in the batch', () => {
    // 2 maps of 3×3×2, values = their own index.
    const values = Float32Array.from({ length: 2 * 3 * 3 * 2 }, (_, i) => i);
    const out = cropFeatureMaps(values, 2, [3, 3, 2], { top: 1, left: 0, height: 2, width: 2 });
    // Map 0: rows 1–2, columns 0–1 → positions (1,0) (1,1) (2,0) (2,1); map 1 likewise, offset 18.
    expect(Array.from(out)).toEqual([6, 7, 8, 9, 12, 13, 14, 15, 24, 25, 26, 27, 30, 31, 32, 33]);
  });
});

describe('cropHeadToUsedRegion', () => {
  it('finds the 9×9 window a valid 4×4 average pool reads and reproduces the full head', () => {
    const { head } = cutModel(tinyModel('valid-avg-pool'));
    const cropped = cropHeadToUsedRegion(head);
    expect(cropped?.crops).toEqual([{ top: 0, left: 0, height: 9, width: 9 }]);
    expect(cropped!.head.inputs[0]!.shape).toEqual([null, 9, 9, 3]);
    // The rebuilt head shares the layers, hence the variables.
    expect(cropped!.head.trainableWeights.map((w) => w.name)).toEqual(head.trainableWeights.map((w) => w.name));
    const x = tf.randomNormal([5, 10, 10, 3], 0, 1, 'float32', 11);
    const full = head.predict(x) as tf.Tensor;
    const part = cropped!.head.predict(tf.slice(x, [0, 0, 0, 0], [-1, 9, 9, -1])) as tf.Tensor;
    expect(tf.max(tf.abs(tf.sub(full, part))).dataSync()[0]).toBeLessThan(1e-6);
    // Row 9 and column 9 really are unread: changing them leaves the full head's output alone.
    const changed = tf.concat([tf.slice(x, [0, 0, 0, 0], [-1, 9, 10, -1]), tf.fill([5, 1, 10, 3], 50)], 1);
    expect(tf.max(tf.abs(tf.sub(full, head.predict(changed) as tf.Tensor))).dataSync()[0]).toBeLessThan(1e-6);
  });

  it('takes the same training step on the cropped features as the full head on the whole map', () => {
    const a = cutModel(tinyModel('valid-avg-pool', 5)).head;
    const b = cutModel(tinyModel('valid-avg-pool', 5)).head;
    const cropped = cropHeadToUsedRegion(b)!;
    const x = tf.randomNormal([6, 10, 10, 3], 0, 1, 'float32', 12);
    const labels = [0, 1, 2, 0, 1, 2];
    const optA = new ScheduledAdam(1e-2);
    const optB = new ScheduledAdam(1e-2);
    for (let step = 0; step < 3; step++) {
      trainStep(a, optA, [x], labels, 3);
      trainStep(cropped.head, optB, [tf.slice(x, [0, 0, 0, 0], [-1, 9, 9, -1])], labels, 3);
    }
    const [wa, wb] = [weightsOf(a), weightsOf(b)];
    expect([...wa.keys()]).toEqual([...wb.keys()]);
    let worst = 0;
    let moved = 0;
    const before = weightsOf(cutModel(tinyModel('valid-avg-pool', 5)).head);
    for (const [name, values] of wa) {
      const other = wb.get(name)!;
      values.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - other[i]!));
        moved = Math.max(moved, Math.abs(v - before.get(name)![i]!));
      });
    }
    expect(moved).toBeGreaterThan(1e-3);
    expect(worst).toBeLessThan(1e-5);
  });

  it.each(['global-avg-pool', 'flatten', 'spatial-batchnorm'] as const)('leaves a head with %s whole', (tail) => {
    const { head } = cutModel(tinyModel(tail));
    expect(cropHeadToUsedRegion(head)).toBeUndefined();
  });

  it('crops VGG-16 (POCOVID-Net head) at 224 to 9×9 of its 14×14 features, and no other model', () => {
    const vgg = createModel('vgg16', { numClasses: 3, seed: 1 });
    expect(cropHeadToUsedRegion(vgg.head)?.crops).toEqual([{ top: 0, left: 0, height: 9, width: 9 }]);
    disposeBuiltModel(vgg);
    for (const name of ['vgg16_cam', 'resnet18', 'mobilenet_v1']) {
      const built = createModel(name, { numClasses: 3, seed: 1, inputSize: [64, 64] });
      expect(cropHeadToUsedRegion(built.head), name).toBeUndefined();
      disposeBuiltModel(built);
    }
  });
});
