// Frozen BatchNorm folded into the convolution before it (src/model_dir/fold_batchnorm.ts): the
// folded files build a model that computes what the original computes (probabilities and Grad-CAM),
// without the folded layers; what cannot be folded (a trainable BatchNorm, a convolution read
// twice) stays as it was.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { gradCam } from '../../src/explain/gradcam.js';
import { foldBatchNorm } from '../../src/model_dir/fold_batchnorm.js';
import { layersModelFromFiles, layersModelToFiles } from '../../src/model_dir/layers_io.js';
import { storeWeightsAs } from '../../src/model_dir/weight_dtype.js';
import { ANTI_ALIAS_PREFIX } from '../../src/models/anti_alias.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';
import { createRng } from '../../src/util/rng.js';

/** conv (no bias) → BN → ReLU → depthwise (bias) → BN → ReLU6 → conv → trainable BN → ReLU → pooled → Dense; and a conv read twice. */
function model(): tfl.LayersModel {
  const input = tfl.input({ shape: [12, 12, 3], name: 'input' });
  const frozen = (name: string, x: tfl.SymbolicTensor) => tfl.layers.batchNormalization({ name, trainable: false, epsilon: 1e-3 }).apply(x) as tfl.SymbolicTensor;
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'c1' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: 'c1_relu' }).apply(frozen('c1_bn', x)) as tfl.SymbolicTensor;
  x = tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', useBias: true, name: 'd1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ maxValue: 6, name: 'd1_relu' }).apply(frozen('d1_bn', x)) as tfl.SymbolicTensor;
  const shared = tfl.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, name: 'c2' }).apply(x) as tfl.SymbolicTensor;
  // c2 is read by its BatchNorm and by the add: folding would change the add's input.
  const bn = frozen('c2_bn', shared);
  x = tfl.layers.add({ name: 'mix' }).apply([bn, shared]) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, name: 'c3' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'c3_bn' }).apply(x) as tfl.SymbolicTensor; // trainable: stays
  x = tfl.layers.reLU({ name: 'cam' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  const output = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'classifier' }).apply(x) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: input, outputs: output, name: 'folding' });
  // BatchNorm statistics far from the identity, so that a wrong fold shows.
  const rng = createRng(3);
  for (const layer of m.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const n = layer.getWeights()[0]!.shape[0]!;
    const values = [0.5, 0, 0, 0.5].map((base, k) => tf.tensor1d(Array.from({ length: n }, () => (k === 3 ? 0.2 + rng.next() * 2 : base + rng.normal() * 0.7))));
    layer.setWeights(values);
    tf.dispose(values);
  }
  return m;
}

beforeAll(async () => {
  await initEngine();
});

describe('foldBatchNorm', () => {
  it('folds frozen BatchNorms after a once-read convolution: the same probabilities and Grad-CAM, the rest untouched', async () => {
    const original = model();
    const files = await layersModelToFiles(original);
    const { files: foldedFiles, folded } = foldBatchNorm(files, 'tiny');
    expect(folded.sort()).toEqual(['c1_bn', 'd1_bn']);
    const built = await layersModelFromFiles(foldedFiles);
    const names = built.layers.map((l) => l.name);
    expect(names).not.toContain('c1_bn');
    expect(names).not.toContain('d1_bn');
    for (const kept of ['c2_bn', 'c3_bn', 'cam', 'classifier', 'c1_relu']) expect(names).toContain(kept);
    expect((built.getLayer('c1').getConfig() as { useBias: boolean }).useBias).toBe(true);
    const x = tf.randomUniform([3, 12, 12, 3], -1, 1, 'float32', 9);
    const want = (original.predict(x) as tf.Tensor).dataSync();
    const got = (built.predict(x) as tf.Tensor).dataSync();
    got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5));
    const one = tf.randomUniform([1, 12, 12, 3], -1, 1, 'float32', 10);
    const camWant = gradCam(original, one, 'cam', 1).map;
    gradCam(built, one, 'cam', 1).map.forEach((v, i) => expect(Math.abs(v - camWant[i]!)).toBeLessThan(1e-4));
    // Four weights of each folded BatchNorm gone, a bias for c1 (d1 had one).
    expect(built.weights.length).toBe(original.weights.length - 8 + 1);
    // Nothing to fold: the files as they were.
    const again = foldBatchNorm(foldedFiles, 'tiny');
    expect(again.folded).toEqual([]);
    expect(again.files).toBe(foldedFiles);
    // Weights already stored as float16 are left as they are (folding would round them twice).
    const half = storeWeightsAs(files, 'float16', 'tiny');
    expect(foldBatchNorm(half, 'tiny')).toEqual({ files: half, folded: [] });
    tf.dispose([x, one]);
    original.dispose();
    built.dispose();
  });

  it('folds an anti-aliased MobileNet: every BatchNorm goes, its low-pass filters stay, the same probabilities', async () => {
    const built = createModel('mobilenet_v1', { numClasses: 3, inputSize: [64, 64], seed: 4, antiAlias: 5, trainableLayers: 0, head: 'linear' });
    try {
      const files = await layersModelToFiles(built.model);
      const { files: foldedFiles, folded } = foldBatchNorm(files, 'aliased');
      const batchNorms = built.model.layers.filter((l) => l.getClassName() === 'BatchNormalization').map((l) => l.name);
      expect(folded.sort()).toEqual(batchNorms.sort());
      const model = await layersModelFromFiles(foldedFiles);
      const filters = (m: tfl.LayersModel) => m.layers.filter((l) => l.name.startsWith(ANTI_ALIAS_PREFIX)).map((l) => Array.from(l.getWeights()[0]!.dataSync()));
      expect(filters(model)).toEqual(filters(built.model));
      expect(filters(model)).toHaveLength(5);
      const x = tf.randomUniform([2, 64, 64, 3], -1, 1, 'float32', 11);
      const want = (built.model.predict(x) as tf.Tensor).dataSync();
      (model.predict(x) as tf.Tensor).dataSync().forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5));
      x.dispose();
      model.dispose();
    } finally {
      disposeBuiltModel(built);
    }
  });
});
