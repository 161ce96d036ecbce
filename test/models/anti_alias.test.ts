// Anti-aliased downsampling (src/models/anti_alias.ts): the filter itself, where it sits in
// MobileNet v1, that pretrained weights load into it unchanged, and that it does what it is for:
// features that move less when the picture moves by one pixel.
import { describe, expect, it } from 'vitest';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine, tf } from '../../src/engine/index.js';
import { ANTI_ALIAS_PREFIX, binomialKernel } from '../../src/models/anti_alias.js';
import { countParams, createModel, disposeBuiltModel, type BuiltModel } from '../../src/models/index.js';
import { headLayerPrefixes, loadWeightsIntoModel, readModelWeights } from '../../src/models/weights/index.js';
import { createRng } from '../../src/util/rng.js';

await initEngine();

const SIZE = 64;
const build = (antiAlias: number, inputSize: [number, number] = [SIZE, SIZE]): BuiltModel =>
  createModel('mobilenet_v1', { numClasses: 3, inputSize, seed: 3, antiAlias, head: 'linear', trainableLayers: 0 });

function withModels<T>(models: BuiltModel[], fn: () => T): T {
  try {
    return fn();
  } finally {
    models.forEach(disposeBuiltModel);
  }
}

/** The channels of MobileNet v1 where its five stride-2 convolutions end (conv1, conv_dw_2, 4, 6, 12). */
const STRIDED = { conv1: 32, conv_dw_2: 64, conv_dw_4: 128, conv_dw_6: 256, conv_dw_12: 512 };

describe('binomialKernel', () => {
  it('is [1, 2, 1] ⊗ [1, 2, 1] / 16 in every channel', () => {
    const kernel = binomialKernel(2);
    const values = kernel.arraySync();
    kernel.dispose();
    const expected = [[1, 2, 1], [2, 4, 2], [1, 2, 1]].map((row) => row.map((v) => [[v / 16], [v / 16]]));
    expect(values).toEqual(expected);
  });

  it('removes the highest frequency a stride of 2 would fold back, and keeps a flat picture', () => {
    // A checkerboard is all Nyquist: nothing of it may survive the low-pass (away from the padded edge).
    const n = 8;
    const checker = tf.tensor4d(Array.from({ length: n * n }, (_, i) => ((Math.floor(i / n) + (i % n)) % 2 === 0 ? 1 : -1)), [1, n, n, 1]);
    const flat = tf.fill([1, n, n, 1], 0.7) as tf.Tensor4D;
    const kernel = binomialKernel(1);
    const filtered = tf.depthwiseConv2d(checker, kernel, 1, 'valid');
    const flatFiltered = tf.depthwiseConv2d(flat, kernel, 1, 'valid');
    expect(Math.max(...Array.from(tf.abs(filtered).dataSync()))).toBeLessThan(1e-7);
    Array.from(flatFiltered.dataSync()).forEach((v) => expect(v).toBeCloseTo(0.7, 6));
    tf.dispose([checker, flat, kernel, filtered, flatFiltered]);
  });
});

describe('mobilenet_v1 with --anti-alias 5 (every stride-2 conv)', () => {
  it('runs each stride-2 conv at stride 1 and subsamples after its ReLU6 with a frozen low-pass', () => {
    const [plain, aliased] = [build(0, [224, 224]), build(5, [224, 224])];
    withModels([plain, aliased], () => {
      const names = aliased.model.layers.map((layer) => layer.name);
      for (const [conv, channels] of Object.entries(STRIDED)) {
        expect(aliased.model.getLayer(conv).getConfig()['strides']).toEqual([1, 1]);
        expect(plain.model.getLayer(conv).getConfig()['strides']).toEqual([2, 2]);
        const filter = aliased.model.getLayer(`${ANTI_ALIAS_PREFIX}${conv}`);
        expect(filter.trainable).toBe(false);
        expect(filter.getConfig()['strides']).toEqual([2, 2]);
        expect(filter.weights[0]!.shape).toEqual([3, 3, channels, 1]);
        // Right after the conv's ReLU6, before the next conv.
        expect(names.indexOf(filter.name)).toBe(names.indexOf(`${conv}_relu`) + 1);
      }
      expect(names.filter((name) => name.startsWith(ANTI_ALIAS_PREFIX))).toHaveLength(5);
      // The same features out, the same trainable weights, 9 × 992 fixed filter taps more.
      expect(aliased.model.getLayer('conv_pw_12_relu').outputShape).toEqual([null, 7, 7, 1024]);
      const [p, a] = [countParams(plain.model), countParams(aliased.model)];
      expect(a.trainable).toBe(p.trainable);
      expect(a.nonTrainable - p.nonTrainable).toBe(9 * (32 + 64 + 128 + 256 + 512));
      // The filters sit in the frozen backbone, never in what a head trains.
      expect(aliased.head.layers.some((layer) => layer.name.startsWith(ANTI_ALIAS_PREFIX))).toBe(false);
      expect(aliased.cfg.antiAlias).toBe(5);
      expect(plain.cfg.antiAlias).toBeUndefined();
    });
  });

  it('takes a plain MobileNet weight file unchanged and keeps its filters', () => {
    const [plain, aliased] = [build(0), build(5)];
    withModels([plain, aliased], () => {
      const file = readModelWeights(plain.model);
      for (const name of [...file.keys()]) if (name.startsWith('classifier')) file.delete(name);
      const report = loadWeightsIntoModel(aliased.model, file, { allowUnset: headLayerPrefixes(aliased), source: 'plain.safetensors' });
      expect(report.unset.filter((name) => name.startsWith(ANTI_ALIAS_PREFIX)).sort()).toEqual(
        Object.keys(STRIDED).map((conv) => `${ANTI_ALIAS_PREFIX}${conv}/depthwise_kernel`).sort(),
      );
      const filter = aliased.model.getLayer(`${ANTI_ALIAS_PREFIX}conv_dw_4`).getWeights()[0]!;
      const expected = binomialKernel(128);
      expect(tf.max(tf.abs(tf.sub(filter, expected))).dataSync()[0]).toBe(0);
      expected.dispose();
      // Without the allowance the filters are reported missing, not silently left.
      expect(() => loadWeightsIntoModel(aliased.model, file, { allowUnset: ['classifier'], source: 'plain.safetensors' })).toThrow(
        /antialias_conv1\/depthwise_kernel/,
      );
    });
  });

  it('survives a JSON round trip with its filters (what model.json carries to the page)', async () => {
    const aliased = build(5);
    const topology = aliased.model.toJSON(null, false);
    if (typeof topology === 'string') throw new Error('toJSON(null, false) returned a string');
    const copy = await tfl.models.modelFromJSON({ modelTopology: topology });
    try {
      copy.setWeights(aliased.model.getWeights());
      const x = tf.randomNormal([1, SIZE, SIZE, 3], 0, 1, 'float32', 5);
      const [a, b] = [aliased.model.predict(x) as tf.Tensor, copy.predict(x) as tf.Tensor];
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      tf.dispose([x, a, b]);
    } finally {
      copy.dispose();
      disposeBuiltModel(aliased);
    }
  });

  it('moves its pooled features less than the plain network when the picture moves by one pixel', () => {
    const size = 128;
    const [plain, aliased] = [build(0, [size, size]), build(5, [size, size])];
    withModels([plain, aliased], () => {
      // The same conv weights in both; the pictures: fine random texture over a smooth gradient.
      aliased.model.setWeights(
        aliased.model.weights.map((w) => (w.name.includes(ANTI_ALIAS_PREFIX) ? w.read() : plain.model.getLayer(w.originalName.split('/')[0]!).weights.find((p) => p.originalName === w.originalName)!.read())),
      );
      const rng = createRng(21);
      const wide = size + 1;
      const picture = Float32Array.from({ length: wide * wide * 3 }, (_, i) => {
        const pixel = Math.floor(i / 3);
        return (pixel % wide) / wide - 0.5 + 0.6 * rng.normal();
      });
      const relativeChange = (built: BuiltModel): number =>
        tf.tidy(() => {
          const features = tfl.model({ inputs: built.model.inputs, outputs: built.model.getLayer('conv_pw_12_relu').output as tfl.SymbolicTensor });
          const full = tf.tensor4d(picture, [1, wide, wide, 3]);
          const at = (dx: number) => features.predict(tf.slice(full, [0, 0, dx, 0], [1, size, size, 3])) as tf.Tensor4D;
          const [a, b] = [tf.mean(at(0), [1, 2]), tf.mean(at(1), [1, 2])];
          return tf.div(tf.norm(tf.sub(a, b)), tf.norm(a)).dataSync()[0]!;
        });
      const [plainChange, aliasedChange] = [relativeChange(plain), relativeChange(aliased)];
      expect(plainChange).toBeGreaterThan(0);
      expect(aliasedChange).toBeLessThan(0.3 * plainChange);
    });
  });

  it('anti-aliases only the first n stride-2 convs with --anti-alias n', () => {
    const partial = build(2, [224, 224]);
    withModels([partial], () => {
      const strides = Object.keys(STRIDED).map((conv) => (partial.model.getLayer(conv).getConfig()['strides'] as number[])[0]);
      expect(strides).toEqual([1, 1, 2, 2, 2]);
      expect(partial.model.layers.filter((l) => l.name.startsWith(ANTI_ALIAS_PREFIX)).map((l) => l.name)).toEqual([`${ANTI_ALIAS_PREFIX}conv1`, `${ANTI_ALIAS_PREFIX}conv_dw_2`]);
      expect(partial.model.getLayer('conv_pw_12_relu').outputShape).toEqual([null, 7, 7, 1024]);
      expect(partial.cfg.antiAlias).toBe(2);
    });
  });

  it('is refused for a backbone it is not built into, and past the strided convs there are', () => {
    expect(() => createModel('resnet18', { numClasses: 3, inputSize: [SIZE, SIZE], antiAlias: 1 })).toThrow(/mobilenet_v1 only, not for resnet18/);
    expect(() => createModel('mobilenet_v1', { numClasses: 3, inputSize: [SIZE, SIZE], antiAlias: 6 })).toThrow(/has 5 stride-2 convolutions to anti-alias, got 6/);
  });
});
