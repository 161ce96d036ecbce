import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { gradCam } from '../../src/explain/gradcam.js';
import { decide, normalisedEntropy } from '../../src/decision/combine.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { createPipeline } from '../../src/infer/pipeline.js';
import { dataUrlToBytes } from '../../src/infer/png.js';
import { resizeRgb } from '../../src/media/resize.js';
import { pixelsToInput } from '../../src/models/preprocess.js';
import { writePng, writeVideo } from '../helpers/media_fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let dir: string;
let ensembleDir: string;
let work: string;

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-pipe-'));
  dir = join(work, 'single');
  ensembleDir = join(work, 'ensemble');
  await saveModelDir(dir, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(1)] });
  await saveModelDir(ensembleDir, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(1), tinyModel(5)] });
});

/** The reference: sharp decode + the one resize + pixelsToInput + model.predict, written out by hand. */
async function reference(model: tfl.LayersModel, file: string): Promise<number[]> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const rgb = resizeRgb(new Uint8Array(data), info.width, info.height, 32, 32);
  const x = tf.tensor4d(pixelsToInput(rgb, tinyCfg()), [1, 32, 32, 3]);
  const p = (model.predict(x) as tf.Tensor).arraySync() as number[][];
  x.dispose();
  return p[0]!;
}

describe('pipeline', () => {
  it('classifies an image exactly like the model on the shared preprocessing, with a heatmap and no tensor leak', async () => {
    const file = join(work, 'a.png');
    await writePng(file, 80, 60, 3);
    const pipeline = await createPipeline(dir);
    const want = await reference(pipeline.model.members[0]!, file);
    const before = tf.memory().numTensors;
    const result = await pipeline.predictFile(file, { heatmap: true });
    expect(tf.memory().numTensors).toBe(before);
    expect(result.kind).toBe('image');
    const probs = TINY_CLASSES.map((c) => result.probabilities![c]!);
    probs.forEach((p, i) => expect(p).toBeCloseTo(want[i]!, 5));
    expect(result.label).toBe(TINY_CLASSES[want.indexOf(Math.max(...want))]);
    expect(result.confidence).toBeCloseTo(Math.max(...want), 5);
    expect(result.uncertainty!.entropy).toBeCloseTo(normalisedEntropy(want), 5);
    expect(result.uncertainty!.ensembleStd).toBeNull();
    expect(result.heatmap).toMatch(/^data:image\/png;base64,/);
    const meta = await sharp(dataUrlToBytes(result.heatmap!)).metadata();
    expect([meta.width, meta.height]).toEqual([32, 32]);
    await pipeline.dispose();
  });

  it('averages ensemble members and reports their spread', async () => {
    const file = join(work, 'b.png');
    await writePng(file, 40, 40, 7);
    const pipeline = await createPipeline(ensembleDir);
    const [p0, p1] = [await reference(pipeline.model.members[0]!, file), await reference(pipeline.model.members[1]!, file)];
    const result = await pipeline.predictImage(file);
    TINY_CLASSES.forEach((c, i) => expect(result.probabilities![c]).toBeCloseTo((p0![i]! + p1![i]!) / 2, 5));
    const std = TINY_CLASSES.map((_, i) => Math.abs(p0![i]! - p1![i]!) / 2).reduce((a, b) => a + b) / 3;
    expect(result.uncertainty!.ensembleStd).toBeCloseTo(std, 5);
    await pipeline.dispose();
  });

  it('samples a video, keeps the per-frame timeline and decides by mean or vote', async () => {
    const video = writeVideo(work, 'clip.avi', 2);
    const pipeline = await createPipeline(dir);
    const result = await pipeline.predictVideo(video, { fps: 3, maxFrames: 5, heatmap: true });
    expect(result.kind).toBe('video');
    expect(result.frames!.map((f) => f.index)).toEqual([0, 1, 2, 3, 4]);
    expect(result.frames![1]!.time).toBeCloseTo(1 / 3, 6);
    const mean = TINY_CLASSES.map((c) => result.frames!.reduce((a, f) => a + f.probabilities[c]! / 5, 0));
    TINY_CLASSES.forEach((c, i) => expect(result.probabilities![c]).toBeCloseTo(mean[i]!, 6));
    expect(result.heatmapFrame).toBeGreaterThanOrEqual(0);
    const voted = await pipeline.predictVideo(video, { fps: 3, maxFrames: 5, aggregation: 'vote' });
    const shares = Object.values(voted.probabilities!);
    expect(shares.reduce((a, b) => a + b)).toBeCloseTo(1, 6);
    shares.forEach((s) => expect(Math.round(s * 5)).toBeCloseTo(s * 5, 6));
    await pipeline.dispose();
  });

  it('MC dropout adds a reproducible spread without changing the probabilities', async () => {
    const file = join(work, 'c.png');
    await writePng(file, 32, 32, 2);
    const plain = await createPipeline(dir);
    const mc = await createPipeline(dir, { mcDropout: 8, seed: 3 });
    const mc2 = await createPipeline(dir, { mcDropout: 8, seed: 3 });
    const [r0, r1, r2] = [await plain.predictImage(file), await mc.predictImage(file), await mc2.predictImage(file)];
    expect(r1.probabilities).toEqual(r0.probabilities);
    expect(r0.uncertainty!.mcDropoutStd).toBeNull();
    expect(r1.uncertainty!.mcDropoutStd).toBeGreaterThan(0);
    expect(r2.uncertainty!.mcDropoutStd).toBe(r1.uncertainty!.mcDropoutStd);
  });

  it('gives no diagnosis for input the guard flags', async () => {
    const file = join(work, 'd.png');
    await writePng(file, 32, 32, 1);
    const seen: number[] = [];
    const pipeline = await createPipeline(dir, {
      guard: (rgb, w, h) => {
        seen.push(rgb.length, w, h);
        return { flagged: true, reason: 'not ultrasound', score: 0.9 };
      },
    });
    const result = await pipeline.predictImage(file, { heatmap: true });
    expect(seen).toEqual([32 * 32 * 3, 32, 32]);
    expect(result).toMatchObject({ label: null, probabilities: null, guard: { flagged: true, reason: 'not ultrasound' } });
    expect(result.heatmap).toBeUndefined();
  });

  it('names the file and the problem for bad input', async () => {
    const pipeline = await createPipeline(dir);
    const empty = join(work, 'empty.png');
    writeFileSync(empty, '');
    await expect(pipeline.predictFile(empty)).rejects.toThrow(`${empty}: the file is empty`);
    const playlist = join(work, 'list.mp4');
    writeFileSync(playlist, '#EXTM3U\n#EXTINF:1,\nfile:/etc/passwd\n');
    await expect(pipeline.predictFile(playlist)).rejects.toThrow(/HLS playlist \(m3u8\) is not accepted/);
    const truncated = join(work, 'trunc.png');
    const full = await sharp(Buffer.alloc(32 * 32 * 3, 100), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
    writeFileSync(truncated, full.subarray(0, 40));
    await expect(pipeline.predictFile(truncated)).rejects.toThrow(/trunc.png: cannot decode png image/);
  });
});

describe('Grad-CAM', () => {
  it('equals CAM (ReLU of the class-weighted feature maps) for conv → GAP → softmax Dense', () => {
    const model = tinyModel(4, { hidden: false });
    const x = tf.tensor4d(Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => Math.cos(i * 0.11)), [1, 32, 32, 3]);
    const before = tf.memory().numTensors;
    const result = gradCam(model, x, 'cam_conv', 2);
    expect(tf.memory().numTensors).toBe(before);
    const expected = tf.tidy(() => {
      const features = tfl.model({ inputs: model.inputs, outputs: model.getLayer('cam_conv').output as tfl.SymbolicTensor });
      const a = features.predict(x) as tf.Tensor4D;
      const w = tf.reshape(tf.slice(model.getLayer('classifier').getWeights()[0]!, [0, 2], [8, 1]), [1, 1, 1, 8]);
      const cam = tf.relu(tf.sum(tf.mul(a, w), -1, true)) as tf.Tensor4D;
      const up = tf.reshape(tf.image.resizeBilinear(cam, [32, 32]), [-1]);
      return tf.div(up, tf.max(up)).dataSync();
    });
    expect(result.classIndex).toBe(2);
    expect(result.map.length).toBe(32 * 32);
    for (let i = 0; i < expected.length; i++) expect(result.map[i]).toBeCloseTo(expected[i]!, 4);
    x.dispose();
  });
});

describe('decision rules', () => {
  it('entropy is 0 for certainty and 1 for a uniform vector; vote ties go to the mean', () => {
    expect(normalisedEntropy([1, 0, 0])).toBe(0);
    expect(normalisedEntropy([1 / 3, 1 / 3, 1 / 3])).toBeCloseTo(1, 12);
    const frames = [[0.6, 0.4, 0], [0.1, 0.9, 0], [0.55, 0.45, 0], [0.2, 0.8, 0]].map((p) => ({ probabilities: p, ensembleStd: null, mcDropoutStd: null }));
    const vote = decide(frames, 'vote');
    expect(vote.probabilities).toEqual([0.5, 0.5, 0]);
    expect(vote.classIndex).toBe(1);
    expect(decide(frames, 'mean').classIndex).toBe(1);
  });
});
