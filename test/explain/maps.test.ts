// Grad-CAM, CAM, saliency and occlusion on a model that only looks at the top-left quadrant.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { classActivationMap, supportsCam } from '../../src/explain/cam.js';
import { gradCam } from '../../src/explain/gradcam.js';
import { layersForward, occlusionMap } from '../../src/explain/occlusion.js';
import { saliencyMap } from '../../src/explain/saliency.js';
import { quadrants, regionCfg, regionInputs, regionModel, SIZE } from './region_model.js';

beforeAll(async () => {
  await initEngine();
});

const max = (v: number[]): number => Math.max(...v);
const min = (v: number[]): number => Math.min(...v);

describe('maps of a model that looks only at the top-left quadrant', () => {
  let model: ReturnType<typeof regionModel>;
  beforeAll(() => {
    model = regionModel({ dropout: 0.5 });
  });
  const input = (): tf.Tensor4D => tf.tensor4d(regionInputs(1), [1, SIZE, SIZE, 3]);

  it('predicts class 0 on the test input (so the maps explain the evidence for it)', () => {
    const p = tf.tidy(() => (model.predict(input()) as tf.Tensor).dataSync());
    expect(p[0]).toBeGreaterThan(0.5);
  });

  it('Grad-CAM is 1 at its peak inside the quadrant and 0 outside', () => {
    const x = input();
    const before = tf.memory().numTensors;
    const result = gradCam(model, x, 'cam_conv');
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    expect(result.classIndex).toBe(0);
    expect(result.map.length).toBe(SIZE * SIZE);
    const { inside, outside } = quadrants(result.map);
    expect(max(inside)).toBeCloseTo(1, 5);
    expect(min(inside)).toBeGreaterThan(0.3);
    expect(max(outside)).toBe(0);
  });

  it('CAM equals Grad-CAM where the classifier reads GAP of the CAM layer, and leaks nothing', () => {
    expect(supportsCam(model, 'cam_conv', 'classifier')).toBe(true);
    const x = input();
    const before = tf.memory().numTensors;
    const cam = classActivationMap(model, x, 'cam_conv', 'classifier');
    expect(tf.memory().numTensors).toBe(before);
    const grad = gradCam(model, x, 'cam_conv');
    x.dispose();
    // Grad-CAM's channel weights are the CAM weights / (h·w): the normalised maps coincide.
    for (let i = 0; i < cam.map.length; i++) expect(cam.map[i]).toBeCloseTo(grad.map[i]!, 5);
    const { inside, outside } = quadrants(cam.map);
    expect(max(inside)).toBeCloseTo(1, 5);
    expect(max(outside)).toBe(0);
  });

  it('CAM refuses a model whose classifier does not read GAP of the CAM layer, naming the model', () => {
    const withBn = regionModel({ batchNorm: true });
    expect(supportsCam(withBn, 'cam_conv', 'classifier')).toBe(false);
    const x = input();
    expect(() => classActivationMap(withBn, x, 'cam_conv', 'classifier')).toThrow(/global average pooling of "cam_conv".*Grad-CAM for model "region"/);
    x.dispose();
  });

  it('saliency is exactly zero outside the quadrant, in [0,1] and leaks nothing', () => {
    const x = input();
    const before = tf.memory().numTensors;
    const result = saliencyMap(model, x, 0);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    const { inside, outside } = quadrants(result.map);
    expect(max(outside)).toBe(0);
    expect(max(inside)).toBeCloseTo(1, 6);
    expect(min(inside)).toBeGreaterThan(0);
    // |d logit_0 / dx| = 8 · Σ_f kernel[c,f] / 256 at every inside pixel, max over channels (c = 0: 0.5).
    expect(result.peak).toBeCloseTo((8 * 0.5 * (1 + 1.25 + 1.5 + 1.75)) / (SIZE * SIZE), 5);
  });

  it('occlusion: covering the quadrant drops class 0, covering the rest changes nothing', async () => {
    const data = regionInputs(1);
    let calls = 0;
    const forward = layersForward(model, [SIZE, SIZE, 3]);
    const counting = (batch: Float32Array, n: number): Float32Array => {
      calls++;
      expect(n).toBeLessThanOrEqual(5);
      return forward(batch, n) as Float32Array;
    };
    const before = tf.memory().numTensors;
    const result = await occlusionMap(counting, data, [SIZE, SIZE, 3], { patch: 4, stride: 4, fill: 'zero', batchSize: 5 });
    expect(tf.memory().numTensors).toBe(before);
    expect(result.positions).toBe(16);
    expect(calls).toBe(1 + Math.ceil(16 / 5));
    expect(result.classIndex).toBe(0);
    const { inside, outside } = quadrants(result.map);
    expect(max(outside)).toBe(0);
    expect(quadrants(result.drop).outside.every((d) => Math.abs(d) < 1e-6)).toBe(true);
    expect(max(inside)).toBeCloseTo(1, 6);
    expect(min(quadrants(result.drop).inside)).toBeGreaterThan(0);
  });

  it('occlusion covers the far edge when the stride does not divide the side, and validates options', async () => {
    const data = regionInputs(1);
    const forward = layersForward(model, [SIZE, SIZE, 3]);
    const result = await occlusionMap(forward, data, [SIZE, SIZE, 3], { patch: 5, stride: 4, fill: 'black', cfg: regionCfg() });
    expect(result.positions).toBe(16); // starts 0, 4, 8, 11 on each side
    await expect(occlusionMap(forward, data, [SIZE, SIZE, 3], { patch: 0 })).rejects.toThrow(/patch must be an integer in \[1, 16\]/);
    await expect(occlusionMap(forward, data, [SIZE, SIZE, 3], { fill: 'black' })).rejects.toThrow(/needs the model's pretrained config/);
  });
});
