// Loads the real MobileNet v1 file from /work/shared into the zoo's model, strictly, and checks that
// the result behaves like a trained network on real POCUS frames.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initEngine, tf } from '../../../src/engine/index.js';
import { createModel, disposeBuiltModel, layerOutput } from '../../../src/models/index.js';
import { pixelsToInput } from '../../../src/models/preprocess.js';
import type { BuiltModel } from '../../../src/models/types.js';
import { loadPretrained } from '../../../src/models/weights/load.js';
import { describeOnRealData } from '../../helpers/prerequisites.js';

const WEIGHTS = '/work/shared/weights/mobilenet_v1_1.0_224_imagenet_to_pw12.safetensors';
const IMAGES = '/work/shared/data/pocus/pocus_images/convex';
const FRAMES = ['Cov_Oliviera_2020_Fig4A.jpg', 'Reg_Avi_normal-A-lines.JPG'].map((f) => join(IMAGES, f));
const available = existsSync(WEIGHTS) && FRAMES.every(existsSync);

describeOnRealData(available, `${WEIGHTS} or the POCUS frames`, 'real MobileNet v1 weights (/work/shared)', () => {
  let built: BuiltModel;
  let features: tfl.LayersModel;
  beforeAll(async () => {
    await initEngine();
    built = createModel('mobilenet_v1', { numClasses: 3, seed: 1 });
    features = tfl.model({ inputs: built.model.inputs, outputs: layerOutput(built.model, 'head_gap') });
  });
  afterAll(() => {
    if (built) disposeBuiltModel(built);
  });

  async function frame(file: string): Promise<Float32Array> {
    const [h, w] = built.cfg.inputSize;
    const rgb = await sharp(file).removeAlpha().resize(w, h, { fit: 'fill' }).raw().toBuffer();
    return pixelsToInput(rgb, built.cfg);
  }

  async function run(model: tfl.LayersModel, input: Float32Array): Promise<Float32Array> {
    const [h, w] = built.cfg.inputSize;
    const x = tf.tensor(input, [1, h, w, 3]);
    const y = model.predict(x) as tf.Tensor;
    const values = (await y.data()) as Float32Array;
    tf.dispose([x, y]);
    return values;
  }

  it('loads strictly: every backbone weight from the file, only the head left at init', async () => {
    const before = tf.memory().numTensors;
    const report = await loadPretrained(built, WEIGHTS);
    expect(tf.memory().numTensors).toBe(before);
    expect(report.loaded).toHaveLength(125); // conv1 + bn, then 12 × (dw + bn + pw + bn)
    expect(report.unset.every((n) => n.startsWith('head_') || n.startsWith('classifier/'))).toBe(true);
    expect(report.dropped).toEqual([]);
  });

  it('gives finite 1024-d features that differ between two real frames, and finite features for grey', async () => {
    const [a, b] = await Promise.all(FRAMES.map(frame));
    const fa = await run(features, a!);
    const fb = await run(features, b!);
    const grey = await run(features, pixelsToInput(new Uint8Array(224 * 224 * 3).fill(128), built.cfg));
    for (const f of [fa, fb, grey]) {
      expect(f).toHaveLength(1024);
      expect(f.every(Number.isFinite)).toBe(true);
      // After ReLU6 and averaging: within [0, 6], neither dead nor saturated.
      expect(Math.min(...f)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...f)).toBeLessThanOrEqual(6);
    }
    const active = (f: Float32Array) => f.filter((v) => v > 1e-3).length;
    expect(active(fa)).toBeGreaterThan(100);
    const norm = (f: Float32Array) => Math.hypot(...f);
    const distance = Math.hypot(...fa.map((v, i) => v - fb[i]!));
    expect(distance / Math.max(norm(fa), norm(fb))).toBeGreaterThan(0.1);

    const probabilities = [await run(built.model, a!), await run(built.model, b!)];
    for (const p of probabilities) {
      expect(p.every(Number.isFinite)).toBe(true);
      expect(p.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 4);
    }
    expect(Array.from(probabilities[0]!)).not.toEqual(Array.from(probabilities[1]!));
  });
});
