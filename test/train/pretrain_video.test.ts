// Self-supervised pretraining of MobileNet v1's last block (src/train/pretrain_video.ts): the
// block computed by hand equals the model's own layers, the NT-Xent loss equals a hand count, the
// pretraining lowers the loss while moving only the last block, and a cv fold runs it on its
// training frames only.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';
import { layerOutput } from '../../src/models/cut.js';
import { lastBlockFeatures, lastBlockOf, ntXentLoss, pretrainVideoContrastive } from '../../src/train/pretrain_video.js';
import type { FrameInputs } from '../../src/train/data_access.js';
import type { ManifestRow } from '../../src/data/types.js';
import { trainFold } from '../../src/train/train_fold.js';
import { loadModel } from '../../src/model_dir/run.js';
import { createRng } from '../../src/util/rng.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

const SIZE = 64;

beforeAll(async () => {
  await initEngine();
});

function mobilenet(perturbBatchNorms = true) {
  const built = createModel('mobilenet_v1', { numClasses: 3, trainableLayers: 0, inputSize: [SIZE, SIZE], head: 'linear', seed: 1 });
  if (!perturbBatchNorms) return built;
  // Batch norms away from the identity, so that the hand-written block must apply them right.
  const rng = createRng(4);
  for (const name of ['conv_dw_12_bn', 'conv_pw_12_bn']) {
    const layer = built.model.getLayer(name);
    layer.setWeights(layer.getWeights().map((w, i) => tf.tensor(Float32Array.from({ length: w.size }, () => (i === 3 ? 0.5 + rng.next() : 0.3 * rng.normal() + (i === 0 ? 1 : 0))), w.shape)));
  }
  return built;
}

/** Videos of `frames` inputs each: a video-specific pattern plus a little per-frame noise. */
function syntheticFrames(videos: number, frames: number, seed: number): FrameInputs {
  const rng = createRng(seed);
  const patterns = Array.from({ length: videos }, () => Float32Array.from({ length: SIZE * SIZE * 3 }, () => rng.normal()));
  const rows = Array.from({ length: videos * frames }, (_, i) => ({ path: `f${i}.png`, source: `s${seed}v${Math.floor(i / frames)}.mp4`, patient: `s${seed}p${Math.floor(i / frames)}`, fold: 0, label: 'covid' }) as ManifestRow);
  const inputs = rows.map((_, i) => Float32Array.from(patterns[Math.floor(i / frames)]!, (v) => v + 0.3 * rng.normal()));
  return { rows, count: rows.length, labels: rows.map(() => 0), input: async (i) => inputs[i]!.slice() };
}

describe('the last block, by hand', () => {
  it("equals the model's own conv_dw_12 … conv_pw_12_relu, pooled", () => {
    const built = mobilenet();
    const lower = tfl.model({ inputs: built.model.inputs, outputs: layerOutput(built.model, 'conv_pw_11_relu') });
    const upper = tfl.model({ inputs: built.model.inputs, outputs: layerOutput(built.model, 'conv_pw_12_relu') });
    const x = tf.randomNormal([2, SIZE, SIZE, 3], 0, 1, 'float32', 3);
    const activations = lower.predict(x) as tf.Tensor4D;
    const expected = tf.mean(upper.predict(x) as tf.Tensor, [1, 2]);
    const got = lastBlockFeatures(lastBlockOf(built.model), activations);
    expect(got.shape).toEqual([2, 1024]);
    const difference = tf.max(tf.abs(tf.sub(got, expected))).dataSync()[0]!;
    expect(difference).toBeLessThan(1e-4);
    expect(tf.max(tf.abs(expected)).dataSync()[0]!).toBeGreaterThan(0.1);
    tf.dispose([x, activations, expected, got]);
    disposeBuiltModel(built);
  });

  it('has the NT-Xent loss of a hand count (rows i and i + B are pairs)', () => {
    const rows = [[1, 0.2], [0.1, 1], [0.9, 0.4], [-0.2, 1]];
    const loss = ntXentLoss(tf.tensor2d(rows), 0.5);
    const unit = rows.map((r) => r.map((v) => v / Math.hypot(...r)));
    let expected = 0;
    for (let i = 0; i < 4; i++) {
      const sims = unit.map((u, j) => (j === i ? -Infinity : (u[0]! * unit[i]![0]! + u[1]! * unit[i]![1]!) / 0.5));
      const lse = Math.log(sims.reduce((a, s) => a + Math.exp(s), 0));
      expected += lse - sims[(i + 2) % 4]!;
    }
    expect(loss.dataSync()[0]!).toBeCloseTo(expected / 4, 4);
    loss.dispose();
  });
});

describe('pretraining on same-video pairs', () => {
  it('lowers the contrastive loss, moves only the last block, keeps the trainable flags and leaks no tensor', async () => {
    const built = mobilenet(false);
    const before = new Map(built.model.weights.map((w) => [w.originalName, w.read().dataSync().slice()]));
    const flags = built.model.layers.map((l) => l.trainable);
    const tensors = tf.memory().numTensors;
    const result = await pretrainVideoContrastive(built, [syntheticFrames(6, 4, 1), syntheticFrames(4, 3, 2)], { steps: 30, videos: 8, lr: 1e-3, temperature: 0.2, projection: 16, seed: 5 });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(result.videos).toBe(10);
    expect(result.frames).toBe(36);
    expect(result.losses).toHaveLength(30);
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    expect(mean(result.losses.slice(-5))).toBeLessThan(mean(result.losses.slice(0, 5)) - 0.2);
    const moved = built.model.weights.filter((w) => {
      const old = before.get(w.originalName)!;
      const now = w.read().dataSync();
      return now.some((v, i) => v !== old[i]);
    });
    expect(moved.map((w) => w.originalName).sort()).toEqual(
      ['conv_dw_12/depthwise_kernel', 'conv_dw_12_bn/beta', 'conv_dw_12_bn/gamma', 'conv_pw_12/kernel', 'conv_pw_12_bn/beta', 'conv_pw_12_bn/gamma'].sort(),
    );
    expect(built.model.layers.map((l) => l.trainable)).toEqual(flags);
    disposeBuiltModel(built);
  });

  it('is seeded: the same seed gives the same weights', async () => {
    const runOnce = async () => {
      const built = mobilenet();
      await pretrainVideoContrastive(built, [syntheticFrames(5, 3, 1)], { steps: 3, videos: 4, lr: 1e-3, temperature: 0.2, projection: 8, seed: 9 });
      const values = built.model.getLayer('conv_pw_12').getWeights()[0]!.dataSync().slice();
      disposeBuiltModel(built);
      return values;
    };
    expect(Array.from(await runOnce())).toEqual(Array.from(await runOnce()));
  });

  it('refuses a model without MobileNet v1\'s last block, and training parts without videos', async () => {
    const cnn = createModel('grayscale_cnn', { numClasses: 3, inputSize: [32, 32] });
    await expect(pretrainVideoContrastive(cnn, [syntheticFrames(3, 2, 1)], { steps: 1, videos: 2, lr: 1e-3, temperature: 0.2, projection: 8, seed: 1 })).rejects.toThrow(/MobileNet v1's last block; model .* has no layer conv_pw_11_relu/);
    disposeBuiltModel(cnn);
    const built = mobilenet();
    await expect(pretrainVideoContrastive(built, [syntheticFrames(4, 1, 1)], { steps: 1, videos: 2, lr: 1e-3, temperature: 0.2, projection: 8, seed: 1 })).rejects.toThrow(/at least 2 training videos with 2 or more frames; the training folds have 0/);
    disposeBuiltModel(built);
  });
});

describe('a fold with --pretrain video-contrastive', () => {
  let root: string;
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('pretrains on the training folds only, then fits the head on features of the pretrained block', async () => {
    root = mkdtempSync(join(tmpdir(), 'pocovid-pretrain-'));
    process.env.POCOVID_CACHE = join(root, 'cache');
    const data = join(root, 'data');
    const rows = await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 3, folds: 3, size: 40 });
    const common = { data, model: 'mobilenet_v1', inputSize: [SIZE, SIZE] as [number, number], head: 'logistic' as const, trainableLayers: 0, augment: false, seed: 2, fold: 0, penalties: [0.1, 1], colour: 'grey' as const };
    const plain = await trainFold({ ...common, out: join(root, 'plain') }, { quiet: true });
    const pretrained = await trainFold({ ...common, out: join(root, 'pretrained'), pretrain: 'video-contrastive', pretrainSteps: 4 }, { quiet: true });
    const log = JSON.parse(readFileSync(join(root, 'pretrained', 'pretrain.json'), 'utf8')) as { steps: number; losses: number[]; frames: number; videos: number };
    expect(log.steps).toBe(4);
    expect(log.losses).toHaveLength(4);
    // The training part is folds 1 and 2 (train + validation splits), never fold 0.
    expect(log.frames).toBe(rows.filter((r) => r.fold !== 0).length);
    expect(log.videos).toBe(new Set(rows.filter((r) => r.fold !== 0).map((r) => r.source)).size);
    expect(JSON.parse(readFileSync(join(root, 'pretrained', 'config.json'), 'utf8')).pretrain).toBe('video-contrastive');
    // The saved model carries the pretrained block; its predictions are the run's.
    const a = await loadModel(join(root, 'plain'));
    const b = await loadModel(join(root, 'pretrained'));
    const kernel = (m: typeof a) => m.members[0]!.getLayer('conv_pw_12').getWeights()[0]!.dataSync();
    const [ka, kb] = [kernel(a), kernel(b)];
    const difference = Array.from(ka).reduce((m, v, i) => Math.max(m, Math.abs(v - kb[i]!)), 0);
    expect(difference).toBeGreaterThan(1e-6);
    expect(pretrained.testPredictions).toHaveLength(plain.testPredictions.length);
    for (const m of [...a.members, ...b.members]) m.dispose();
  }, 120_000);
});
