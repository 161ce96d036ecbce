// --runtime for predict/serve: the pipeline's plain forward passes on ONNX Runtime give the same
// probabilities as on TF.js; Grad-CAM and MC dropout still work (they stay on TF.js).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { createPipeline, type PipelineOptions } from '../../src/infer/pipeline.js';
import { writePng, writeVideo } from '../helpers/media_fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;
let ensembleDir: string;

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-rt-pipe-'));
  ensembleDir = join(work, 'ensemble');
  await saveModelDir(ensembleDir, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(1), tinyModel(5)] });
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

const onRuntime = (runtime: 'ort' | 'tfjs', extra: PipelineOptions = {}) => createPipeline(ensembleDir, { runtime, onnxCacheDir: join(work, 'onnx'), ...extra });

function maxDiff(a: Record<string, number>, b: Record<string, number>): number {
  return Math.max(...TINY_CLASSES.map((c) => Math.abs(a[c]! - b[c]!)));
}

describe('pipeline --runtime', () => {
  it('ort and tfjs give the same probabilities for an image and every video frame (within 1e-4)', async () => {
    const image = join(work, 'a.png');
    await writePng(image, 50, 40, 3);
    const video = writeVideo(work, 'clip.avi', 2);
    const ort = await onRuntime('ort');
    const tfjs = await onRuntime('tfjs');
    expect(ort.runtimes).toEqual(['ort', 'ort']);
    expect(tfjs.runtimes).toEqual(['tfjs', 'tfjs']);

    const [a, b] = [await ort.predictImage(image), await tfjs.predictImage(image)];
    expect(maxDiff(a.probabilities!, b.probabilities!)).toBeLessThan(1e-4);
    expect(a.label).toBe(b.label);
    expect(a.uncertainty!.ensembleStd!).toBeCloseTo(b.uncertainty!.ensembleStd!, 4);

    const [va, vb] = [await ort.predictVideo(video, { fps: 3, maxFrames: 5 }), await tfjs.predictVideo(video, { fps: 3, maxFrames: 5 })];
    expect(va.frames!.length).toBe(5);
    va.frames!.forEach((f, i) => expect(maxDiff(f.probabilities, vb.frames![i]!.probabilities)).toBeLessThan(1e-4));
    expect(maxDiff(va.probabilities!, vb.probabilities!)).toBeLessThan(1e-4);
    await ort.dispose();
    await tfjs.dispose();
  });

  it('keeps Grad-CAM and MC dropout on TF.js with ort forward passes, leaking no tensor', async () => {
    const image = join(work, 'b.png');
    await writePng(image, 32, 32, 6);
    const ort = await onRuntime('ort', { mcDropout: 6, seed: 2 });
    const tfjs = await onRuntime('tfjs', { mcDropout: 6, seed: 2 });
    const before = tf.memory().numTensors;
    const a = await ort.predictImage(image, { heatmap: true });
    expect(tf.memory().numTensors).toBe(before);
    const b = await tfjs.predictImage(image, { heatmap: true });
    expect(a.heatmap).toMatch(/^data:image\/png;base64,/);
    // The same seeded TF.js dropout masks: the same spread whatever runs the plain pass.
    expect(a.uncertainty!.mcDropoutStd).toBe(b.uncertainty!.mcDropoutStd);
    expect(maxDiff(a.probabilities!, b.probabilities!)).toBeLessThan(1e-4);
    await ort.dispose();
    await tfjs.dispose();
  });

  it('rejects an unknown runtime, listing the valid ones', async () => {
    await expect(createPipeline(ensembleDir, { runtime: 'gpu' as 'ort' })).rejects.toThrow(/runtime.*gpu.*ort, tfjs, auto/s);
  });
});
