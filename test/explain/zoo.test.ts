// The zoo's models and their configured layers: CAM applies exactly to vgg16_cam, and every map
// method runs on a small instance of a real backbone with its cfg.camLayer and puts its mass
// where the picture is. A ReLU network with zero biases and BatchNorm at its initial statistics
// is blind to a zero background: every activation whose receptive field holds only zeros is
// exactly 0. Fed a picture that is zero outside one band, such a network's CAM-layer activations
// are therefore 0 beyond the band's footprint (the band widened by one pixel per 3×3 conv at that
// conv's resolution), and with non-negative head weights every activation counts as evidence for
// the class: CAM and Grad-CAM must be exactly 0 there and reach their maximum of 1 inside.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { classActivationMap, supportsCam } from '../../src/explain/cam.js';
import { extractFeatures } from '../../src/explain/embedding.js';
import { gradCam } from '../../src/explain/gradcam.js';
import { saliencyMap } from '../../src/explain/saliency.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';

beforeAll(async () => {
  await initEngine();
});

/** Zero biases, BatchNorm at γ=1, β=0, mean 0, var 1, and non-negative Dense kernels. */
function blindToZeroBackground(model: tfl.LayersModel): void {
  for (const layer of model.layers) {
    const kind = layer.getClassName();
    const weights = layer.getWeights();
    if (weights.length === 0) continue;
    let next: tf.Tensor[];
    if (kind === 'BatchNormalization') next = weights.map((w, i) => (i === 0 || i === 3 ? tf.onesLike(w) : tf.zerosLike(w)));
    else if (kind === 'Dense') next = weights.map((w, i) => (i === 0 ? tf.abs(w) : tf.zerosLike(w)));
    else next = weights.map((w, i) => (i === 0 ? tf.clone(w) : tf.zerosLike(w)));
    layer.setWeights(next);
    // getWeights gives the variables themselves: only the new values are ours to dispose.
    tf.dispose(next);
  }
}

/** A [1, size, size, channels] picture: rows < rows and columns < cols hold a texture in [0.5, 1], the rest 0. */
function band(size: number, channels: number, rows: number, cols: number): tf.Tensor4D {
  const values = new Float32Array(size * size * channels);
  for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) for (let c = 0; c < channels; c++) values[(y * size + x) * channels + c] = 0.5 + 0.5 * (((x * 7 + y * 13 + c * 5) % 11) / 10);
  return tf.tensor4d(values, [1, size, size, channels]);
}

/** Largest map value at pixels (y, x) where `where` holds. */
function peakWhere(map: Float32Array, size: number, where: (y: number, x: number) => boolean): number {
  let peak = 0;
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) if (where(y, x)) peak = Math.max(peak, map[y * size + x]!);
  return peak;
}

describe('explanations on zoo models', () => {
  it('CAM is recognised for vgg16_cam (GAP → Dropout → classifier) and refused for resnet18 (GAP → Dense 64 → … → classifier)', () => {
    const cam = createModel('vgg16_cam', { numClasses: 3, inputSize: [32, 32] });
    const plain = createModel('resnet18', { numClasses: 3, inputSize: [32, 32] });
    try {
      expect(supportsCam(cam.model, cam.cfg.camLayer, cam.cfg.classifier)).toBe(true);
      expect(supportsCam(plain.model, plain.cfg.camLayer, plain.cfg.classifier)).toBe(false);
    } finally {
      disposeBuiltModel(cam);
      disposeBuiltModel(plain);
    }
  });

  it('vgg16_cam: CAM and Grad-CAM on block5_conv3 are 0 below the footprint of a band at the top, 1 at their peak above it, equal, and leak nothing', () => {
    // 128²: block5_conv3 is 8×8 (16 px a cell). Rows 0–7 of the picture reach block5 rows 0–6 only
    // (after its 13 convs and 4 poolings); row 7 stays 0, and bilinear upsampling keeps every
    // output row from 112 on at 0. The band spans every column, so a transposed map would fail.
    const size = 128;
    const built = createModel('vgg16_cam', { numClasses: 3, inputSize: [size, size], seed: 3 });
    try {
      expect(built.cfg.camLayer).toBe('block5_conv3');
      blindToZeroBackground(built.model);
      const x = band(size, 3, 8, size);
      const before = tf.memory().numTensors;
      const cam = classActivationMap(built.model, x, built.cfg.camLayer, built.cfg.classifier);
      const grad = gradCam(built.model, x, built.cfg.camLayer, cam.classIndex);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      for (const map of [cam.map, grad.map]) {
        expect(map.length).toBe(size * size);
        expect(peakWhere(map, size, (y) => y < 96)).toBeCloseTo(1, 5);
        expect(peakWhere(map, size, (y) => y >= 112)).toBe(0);
        // Evidence is strongest near the band: more mass in the top half than in the bottom half.
        let top = 0;
        let bottom = 0;
        map.forEach((v, i) => (i < (size * size) / 2 ? (top += v) : (bottom += v)));
        expect(top).toBeGreaterThan(2 * bottom);
      }
      // Grad-CAM's channel weights are CAM's divided by the map's area: the normalised maps coincide.
      let worst = 0;
      cam.map.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - grad.map[i]!))));
      expect(worst).toBeLessThan(1e-4);
    } finally {
      disposeBuiltModel(built);
    }
  });

  it('grayscale_cnn: Grad-CAM on block4_relu is 0 outside the footprint of a corner, 1 inside; saliency and 64-d features without leaks', () => {
    // 64²: block4_relu is 8×8 (8 px a cell). The corner's rows 0–7 reach cells 0–2 and its columns
    // 0–23 cells 0–4 (one pixel per conv at each resolution, pooled in between), so the map is 0
    // from row 24 and from column 40 on: a transposed or flipped map fails.
    const size = 64;
    const built = createModel('grayscale_cnn', { numClasses: 3, inputSize: [size, size], seed: 5 });
    try {
      expect(built.cfg.camLayer).toBe('block4_relu');
      blindToZeroBackground(built.model);
      const x = band(size, 1, 8, 24);
      const before = tf.memory().numTensors;
      const grad = gradCam(built.model, x, built.cfg.camLayer);
      const sal = saliencyMap(built.model, x);
      const features = extractFeatures(built.model, built.cfg.featureLayer, [x.dataSync() as Float32Array, x.dataSync() as Float32Array], [size, size, 1]);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      expect(grad.map.length).toBe(size * size);
      expect(peakWhere(grad.map, size, (y, x) => y < 16 && x < 32)).toBeCloseTo(1, 5);
      expect(peakWhere(grad.map, size, (y, x) => y >= 24 || x >= 40)).toBe(0);
      // Saliency: gradients flow back only through positive activations, and block1's lie in rows
      // 0–8 and columns 0–24; so no pixel from row 10 or column 26 on moves the score.
      expect(sal.map.length).toBe(size * size);
      expect(peakWhere(sal.map, size, (y, x) => y < 10 && x < 26)).toBeCloseTo(1, 6);
      expect(peakWhere(sal.map, size, (y, x) => y >= 10 || x >= 26)).toBe(0);
      expect(Math.min(...sal.map)).toBeGreaterThanOrEqual(0);
      expect(features).toHaveLength(2);
      expect(features[0]).toHaveLength(64);
      expect(features[1]).toEqual(features[0]);
      expect(Math.max(...features[0]!)).toBeGreaterThan(0);
    } finally {
      disposeBuiltModel(built);
    }
  });
});
