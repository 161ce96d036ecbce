// The guard stored with a model is applied by the prediction pipeline, at the guard's own scale
// even when the model's input is small (a 32² model must not see speckle destroyed by its resize).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PHANTOM_CLASSES, renderPhantomFrame, samplePhantomScene } from '../../src/data/phantom.js';
import { initEngine } from '../../src/engine/index.js';
import { frameFeatures } from '../../src/guard/features.js';
import { fitGuard } from '../../src/guard/guard.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { createPipeline } from '../../src/infer/pipeline.js';
import { createRng } from '../../src/util/rng.js';
import { TINY_CLASSES, tinyCfg, tinyModel } from '../helpers/tiny_model.js';

const SIZE = 224;
let dir: string;

async function writePng(path: string, rgb: Uint8Array, size: number): Promise<void> {
  await sharp(Buffer.from(rgb), { raw: { width: size, height: size, channels: 3 } }).png().toFile(path);
}

beforeAll(async () => {
  await initEngine();
  dir = mkdtempSync(join(tmpdir(), 'pocovid-pguard-'));
  const rng = createRng(11);
  const features: number[][] = [];
  for (let s = 0; s < 8; s++) {
    for (const label of PHANTOM_CLASSES) {
      const sceneRng = rng.fork();
      const scene = samplePhantomScene(label, SIZE, sceneRng);
      for (let t = 0; t < 2; t++) features.push(frameFeatures(renderPhantomFrame(scene, t * 3, sceneRng), SIZE, SIZE));
    }
  }
  await saveModelDir(join(dir, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(32), members: [tinyModel(1, { size: 32 })], guard: fitGuard(features) });
  // An unseen phantom frame and a noise picture, both at 224².
  const sceneRng = createRng(99);
  await writePng(join(dir, 'ultrasound.png'), renderPhantomFrame(samplePhantomScene('covid', SIZE, sceneRng), 0, sceneRng), SIZE);
  const noise = new Uint8Array(SIZE * SIZE * 3);
  const noiseRng = createRng(5);
  for (let i = 0; i < noise.length; i++) noise[i] = noiseRng.int(256);
  await writePng(join(dir, 'noise.png'), noise, SIZE);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the pipeline with a stored guard', () => {
  it('diagnoses an ultrasound frame and refuses noise, with a 32² model', async () => {
    const pipeline = await createPipeline(join(dir, 'model'), { runtime: 'tfjs' });
    try {
      const good = await pipeline.predictImage(join(dir, 'ultrasound.png'));
      expect(good.guard?.flagged).toBe(false);
      expect(good.label).not.toBeNull();
      const bad = await pipeline.predictImage(join(dir, 'noise.png'));
      expect(bad.guard?.flagged).toBe(true);
      expect(bad.label).toBeNull();
      expect(bad.probabilities).toBeNull();
      expect(bad.guard?.reason).toMatch(/^unlike the ultrasound frames this model was trained on \(distance \d+\.\d > \d+\.\d; furthest: .+\)$/);
    } finally {
      await pipeline.dispose();
    }
    const unguarded = await createPipeline(join(dir, 'model'), { runtime: 'tfjs', guard: false });
    try {
      const forced = await unguarded.predictImage(join(dir, 'noise.png'));
      expect(forced.guard).toBeUndefined();
      expect(forced.label).not.toBeNull();
    } finally {
      await unguarded.dispose();
    }
  });
});
