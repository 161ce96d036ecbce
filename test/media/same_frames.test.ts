// The reason src/media exists: `data build` (training/evaluation frames) and `predict` must see
// the same frames of a video — same native frames, same times, same pixels — so that predict's
// video-level result reproduces the evaluation. Native rates 25 and 10 fps at 3 fps exercise the
// every-k-th rule (k = 8 and 3), where ffmpeg's `fps` filter would have picked other frames.
import { preprocessorFor } from '../../src/models/preprocess.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataset } from '../../src/data/build.js';
import { readImageAsInput } from '../../src/data/image.js';
import type { ManifestRow } from '../../src/data/types.js';
import { initEngine } from '../../src/engine/index.js';
import { decodeVideoTo } from '../../src/media/decode.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { createPipeline } from '../../src/infer/pipeline.js';
import { encodeVideo } from '../../src/media/ffmpeg.js';
import { tempDir } from '../data/helpers.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

const W = 40;
const H = 30;
/** Frame t: grey level 4·t, a bright 6×6 square moving right by one pixel a frame. */
function frame(t: number): Uint8Array {
  const rgb = new Uint8Array(W * H * 3).fill(4 * t);
  for (let y = 10; y < 16; y++) for (let x = t % (W - 6); x < (t % (W - 6)) + 6; x++) rgb.fill(250, (y * W + x) * 3, (y * W + x) * 3 + 3);
  return rgb;
}

let root: string;
let cleanup: () => void;
let rows: ManifestRow[];
const videos = [
  { rel: 'pocus_videos/convex/Cov_clip.mp4', nativeFps: 25, count: 50, step: 8 },
  { rel: 'pocus_videos/convex/Reg_clip.avi', nativeFps: 10, count: 20, step: 3 },
];

beforeAll(async () => {
  await initEngine();
  ({ dir: root, cleanup } = tempDir('same-frames'));
  mkdirSync(join(root, 'src', 'pocus_videos', 'convex'), { recursive: true });
  for (const v of videos) {
    await encodeVideo(join(root, 'src', v.rel), Array.from({ length: v.count }, (_, t) => frame(t)), W, H, v.nativeFps);
  }
  ({ rows } = await buildDataset({ source: join(root, 'src'), out: join(root, 'ds'), fps: 3, maxFrames: 30, size: 32, folds: 2, quiet: true }));
  await saveModelDir(join(root, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(32), members: [tinyModel(3)] });
});
afterAll(() => cleanup());

describe('data build and predict sample a video the same way', () => {
  it('keep the same native frames at the same times', async () => {
    const pipeline = await createPipeline(join(root, 'model'), { guard: false });
    try {
      for (const v of videos) {
        const built = rows.filter((r) => r.source === v.rel);
        const want = Array.from({ length: Math.ceil(v.count / v.step) }, (_, i) => i * v.step);
        expect(built.map((r) => r.frame)).toEqual(want);
        const predicted = await pipeline.predictVideo(join(root, 'src', v.rel), { fps: 3, maxFrames: 30 });
        expect(predicted.frames!.map((f) => f.index)).toEqual(want.map((_, i) => i));
        expect(predicted.frames!.map((f) => f.time)).toEqual(built.map((r) => expect.closeTo(r.time, 9)));
        expect(built.map((r) => r.time)).toEqual(want.map((n) => expect.closeTo(n / v.nativeFps, 9)));
      }
    } finally {
      await pipeline.dispose();
    }
  });

  it('give the same pixels, so predict reproduces the per-frame probabilities of the evaluation', async () => {
    const pipeline = await createPipeline(join(root, 'model'), { guard: false });
    const model = pipeline.model.members[0]!;
    try {
      for (const v of videos) {
        const built = rows.filter((r) => r.source === v.rel);
        const decoded = await decodeVideoTo(join(root, 'src', v.rel), 32, 32, { fps: 3, maxFrames: 30 });
        expect(decoded.map((f) => f.sourceFrame)).toEqual(built.map((r) => r.frame));
        for (let i = 0; i < built.length; i++) {
          const png = await sharp(join(root, 'ds', built[i]!.path)).raw().toBuffer();
          expect(Buffer.from(decoded[i]!.rgb).equals(png)).toBe(true);
        }
        // Evaluation reads the PNG frames through the pretrained config (as loadBatch does).
        const inputs = await Promise.all(built.map((r) => readImageAsInput(join(root, 'ds', r.path), preprocessorFor(tinyCfg(32)))));
        const x = tf.tensor4d(Float32Array.from(inputs.flatMap((a) => [...a])), [inputs.length, 32, 32, 3]);
        const evaluated = (model.predict(x) as tf.Tensor).arraySync() as number[][];
        tf.dispose(x);
        const predicted = await pipeline.predictVideo(join(root, 'src', v.rel), { fps: 3, maxFrames: 30 });
        predicted.frames!.forEach((f, i) => TINY_CLASSES.forEach((c, k) => expect(f.probabilities[c]).toBeCloseTo(evaluated[i]![k]!, 6)));
      }
    } finally {
      await pipeline.dispose();
    }
  });
});
