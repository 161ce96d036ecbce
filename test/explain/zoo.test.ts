// The zoo's models and their configured layers: CAM applies exactly to vgg16_cam, and every map
// method runs on a small instance of a real backbone with its cfg.camLayer.
import * as tf from '@tensorflow/tfjs-core';
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

describe('explanations on zoo models', () => {
  it('CAM is recognised for vgg16_cam (GAP → Dropout → classifier) and refused for resnet18 (GAP → Dense 64 → … → classifier)', () => {
    const cam = createModel('vgg16_cam', { numClasses: 3, inputSize: [32, 32] });
    const plain = createModel('resnet18', { numClasses: 3, inputSize: [32, 32] });
    try {
      expect(supportsCam(cam.model, cam.cfg.camLayer, cam.cfg.classifier)).toBe(true);
      expect(supportsCam(plain.model, plain.cfg.camLayer, plain.cfg.classifier)).toBe(false);
      const x = tf.randomUniform([1, 32, 32, 3], 0, 1, 'float32', 4);
      const before = tf.memory().numTensors;
      const result = classActivationMap(cam.model, x, cam.cfg.camLayer, cam.cfg.classifier);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      expect(result.map.length).toBe(32 * 32);
      expect(Math.max(...result.map)).toBeLessThanOrEqual(1);
      expect(Math.min(...result.map)).toBeGreaterThanOrEqual(0);
    } finally {
      disposeBuiltModel(cam);
      disposeBuiltModel(plain);
    }
  });

  it('grayscale_cnn: Grad-CAM on its camLayer, saliency and 64-d features, in range and without leaks', () => {
    const built = createModel('grayscale_cnn', { numClasses: 3, inputSize: [32, 32] });
    try {
      const x = tf.randomUniform([1, 32, 32, 1], -2, 2, 'float32', 5);
      const before = tf.memory().numTensors;
      const grad = gradCam(built.model, x, built.cfg.camLayer);
      const sal = saliencyMap(built.model, x);
      const features = extractFeatures(built.model, built.cfg.featureLayer, [x.dataSync() as Float32Array, x.dataSync() as Float32Array], [32, 32, 1]);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      for (const map of [grad.map, sal.map]) {
        expect(map.length).toBe(32 * 32);
        expect(Math.max(...map)).toBeLessThanOrEqual(1);
        expect(Math.min(...map)).toBeGreaterThanOrEqual(0);
      }
      expect(Math.max(...sal.map)).toBeCloseTo(1, 6);
      expect(features).toHaveLength(2);
      expect(features[0]).toHaveLength(64);
      expect(features[1]).toEqual(features[0]);
    } finally {
      disposeBuiltModel(built);
    }
  });
});
