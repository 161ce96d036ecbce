// Self-supervised pretraining of MobileNet v1's last block (conv_dw_12, conv_pw_12 and their
// BatchNorms' scale and shift) on the training folds' own frames, without labels: two frames of
// the same video are a positive pair, frames of the other videos in the batch are negatives
// (SimCLR's NT-Xent loss with same-video positives, as in IVPP; design.md, "What others measured").
// The frozen layers below are run once per frame (their activations kept in memory), so a step
// costs only the last block. Only frames of the fold's training part (its train and validation
// splits: the training folds) are read; the test fold is never touched, so nothing leaks.
// The pretrained block then stays in the model: the feature cache, the head and the saved model
// all see it. The BatchNorm statistics stay ImageNet's (the block runs in inference mode).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import { layerOutput } from '../models/cut.js';
import type { BuiltModel } from '../models/types.js';
import { createRng, type Rng } from '../util/rng.js';
import type { FrameInputs } from './data_access.js';
import type { ProgressReporter } from './progress.js';

export interface PretrainOptions {
  steps: number;
  /** Videos per step; each gives two frames. */
  videos: number;
  lr: number;
  temperature: number;
  /** Width of the projection head's output (discarded after pretraining). */
  projection: number;
  seed: number;
}

/** The settings the training config does not carry (its pretrainSteps and seed complete them). */
export const DEFAULT_PRETRAIN: Omit<PretrainOptions, 'seed' | 'steps'> = { videos: 32, lr: 1e-4, temperature: 0.1, projection: 128 };

export interface PretrainResult {
  /** NT-Xent loss of each step (the batch it trained on). */
  losses: number[];
  videos: number;
  frames: number;
  seconds: number;
}

/** The last block's layer names and the tensor it reads. */
const BLOCK = { input: 'conv_pw_11_relu', dw: 'conv_dw_12', dwBn: 'conv_dw_12_bn', pw: 'conv_pw_12', pwBn: 'conv_pw_12_bn' } as const;

interface BatchNormVars {
  gamma: tf.Variable;
  beta: tf.Variable;
  mean: tf.Tensor;
  variance: tf.Tensor;
  epsilon: number;
}

export interface LastBlock {
  dw: tf.Variable;
  dwBn: BatchNormVars;
  pw: tf.Variable;
  pwBn: BatchNormVars;
  trained: tf.Variable[];
}

function variableOf(layer: tfl.layers.Layer, suffix: string): tf.Variable {
  const weight = layer.weights.find((w) => w.originalName.endsWith(`/${suffix}`));
  if (!weight) throw new PocovidError(`layer ${layer.name} has no weight "${suffix}"`);
  return weight.read() as tf.Variable;
}

function batchNormOf(model: tfl.LayersModel, name: string): BatchNormVars {
  const layer = model.getLayer(name);
  const config = layer.getConfig() as { epsilon?: number; scale?: boolean; center?: boolean };
  if (config.scale === false || config.center === false) throw new PocovidError(`${name}: pretraining needs a BatchNorm with scale and shift`);
  return { gamma: variableOf(layer, 'gamma'), beta: variableOf(layer, 'beta'), mean: variableOf(layer, 'moving_mean'), variance: variableOf(layer, 'moving_variance'), epsilon: config.epsilon ?? 1e-3 };
}

export function lastBlockOf(model: tfl.LayersModel): LastBlock {
  const names = model.layers.map((l) => l.name);
  for (const name of Object.values(BLOCK)) {
    if (!names.includes(name)) throw new PocovidError(`--pretrain video-contrastive trains MobileNet v1's last block; model "${model.name}" has no layer ${name}`);
  }
  const dw = variableOf(model.getLayer(BLOCK.dw), 'depthwise_kernel');
  const pw = variableOf(model.getLayer(BLOCK.pw), 'kernel');
  const dwBn = batchNormOf(model, BLOCK.dwBn);
  const pwBn = batchNormOf(model, BLOCK.pwBn);
  return { dw, dwBn, pw, pwBn, trained: [dw, dwBn.gamma, dwBn.beta, pw, pwBn.gamma, pwBn.beta] };
}

function batchNorm(x: tf.Tensor, bn: BatchNormVars): tf.Tensor {
  return tf.add(tf.mul(tf.div(tf.sub(x, bn.mean), tf.sqrt(tf.add(bn.variance, bn.epsilon))), bn.gamma), bn.beta);
}

/**
 * conv_dw_12 → BN → ReLU6 → conv_pw_12 → BN → ReLU6 → global average pool, as the model computes
 * it (inference mode), from conv_pw_11_relu's output [n, h, w, c]. The 1×1 convolution runs as a
 * matrix product: wasm's Conv2DBackpropInput is slow (design.md), its matMul gradient is not.
 */
export function lastBlockFeatures(block: LastBlock, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    let h: tf.Tensor = tf.depthwiseConv2d(x, block.dw as tf.Tensor4D, 2, 'same');
    h = tf.relu6(batchNorm(h, block.dwBn));
    const [n, height, width, channels] = h.shape as [number, number, number, number];
    const filters = block.pw.shape[3]!;
    h = tf.matMul(tf.reshape(h, [n * height * width, channels]), tf.reshape(block.pw, [channels, filters]));
    h = tf.relu6(batchNorm(h, block.pwBn));
    return tf.mean(tf.reshape(h, [n, height * width, filters]), 1) as tf.Tensor2D;
  });
}

/** NT-Xent over 2B embeddings where rows i and i + B are a positive pair. */
export function ntXentLoss(z: tf.Tensor2D, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const n = z.shape[0];
    const half = n / 2;
    const unit = tf.div(z, tf.add(tf.norm(z, 'euclidean', 1, true), 1e-8));
    const similarity = tf.div(tf.matMul(unit, tf.transpose(unit)), temperature);
    const logits = tf.sub(similarity, tf.mul(tf.eye(n), 1e9));
    const positives = tf.oneHot(
      tf.tensor1d(Array.from({ length: n }, (_, i) => (i < half ? i + half : i - half)), 'int32'),
      n,
    );
    return tf.neg(tf.mean(tf.sum(tf.mul(positives, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

/** Frames of the training part grouped by their video (sources with at least two frames). */
function videosOf(parts: readonly FrameInputs[]): { part: number; index: number }[][] {
  const bySource = new Map<string, { part: number; index: number }[]>();
  parts.forEach((frames, part) =>
    frames.rows.forEach((row, index) => {
      const list = bySource.get(row.source) ?? [];
      list.push({ part, index });
      bySource.set(row.source, list);
    }),
  );
  return [...bySource.values()].filter((frames) => frames.length >= 2);
}

/** conv_pw_11_relu's output for each listed frame, computed once (the layers below are frozen). */
async function lowerActivations(model: tfl.LayersModel, parts: readonly FrameInputs[], frames: { part: number; index: number }[], batchSize: number, progress?: ProgressReporter): Promise<{ values: Float32Array[]; shape: number[] }> {
  // A model over the same layers (shared weights), never disposed: its layers belong to `model`.
  const lower = tfl.model({ inputs: model.inputs, outputs: layerOutput(model, BLOCK.input) });
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const values: Float32Array[] = [];
  let shape: number[] = [];
  progress?.start('pretraining: frozen activations', frames.length);
  for (let start = 0; start < frames.length; start += batchSize) {
    const chunk = frames.slice(start, start + batchSize);
    const inputs = await Promise.all(chunk.map(({ part, index }) => parts[part]!.input(index)));
    const batch = new Float32Array(inputs.reduce((s, a) => s + a.length, 0));
    inputs.forEach((a, i) => batch.set(a, i * a.length));
    const out = tf.tidy(() => lower.predict(tf.tensor(batch, [chunk.length, ...inputShape])) as tf.Tensor);
    shape = out.shape.slice(1);
    const data = (await out.data()) as Float32Array;
    out.dispose();
    const size = data.length / chunk.length;
    for (let i = 0; i < chunk.length; i++) values.push(data.slice(i * size, (i + 1) * size));
    progress?.update(Math.min(start + batchSize, frames.length));
  }
  progress?.stop(`pretraining: frozen activations of ${frames.length} frames`);
  return { values, shape };
}

function seededDense(rng: Rng, rows: number, cols: number, name: string): tf.Variable {
  const scale = Math.sqrt(2 / rows);
  const initial = tf.tensor2d(Float32Array.from({ length: rows * cols }, () => rng.normal() * scale), [rows, cols]);
  // A variable keeps its own reference to the values: the initial tensor is released here.
  const variable = tf.variable(initial, true, name);
  initial.dispose();
  return variable;
}

/**
 * Trains the last block of `built` in place on `parts` (the fold's training frames only) with the
 * same-video contrastive loss. The layers keep their trainable flags.
 */
export async function pretrainVideoContrastive(built: BuiltModel, parts: readonly FrameInputs[], options: PretrainOptions, progress?: ProgressReporter): Promise<PretrainResult> {
  const started = Date.now();
  const block = lastBlockOf(built.model);
  const videos = videosOf(parts);
  if (videos.length < 2) throw new PocovidError(`--pretrain video-contrastive needs at least 2 training videos with 2 or more frames; the training folds have ${videos.length}`);
  const frames = videos.flat();
  const slot = new Map(frames.map((f, i) => [`${f.part}:${f.index}`, i]));
  const { values, shape } = await lowerActivations(built.model, parts, frames, 16, progress);
  const rng = createRng(options.seed);
  const width = block.pw.shape[3]!;
  const projection = [seededDense(rng, width, width / 2, 'pretrain_projection_1'), seededDense(rng, width / 2, options.projection, 'pretrain_projection_2')];
  const wasTrainable = block.trained.map((v) => v.trainable);
  block.trained.forEach((v) => (v.trainable = true));
  const optimizer = tf.train.adam(options.lr);
  const losses: number[] = [];
  const perStep = Math.min(options.videos, videos.length);
  const size = values[0]!.length;
  try {
    progress?.start('pretraining: steps', options.steps);
    for (let step = 0; step < options.steps; step++) {
      const chosen = rng.shuffle(videos.map((_, i) => i)).slice(0, perStep);
      const pairs = chosen.map((v) => {
        const list = videos[v]!;
        const a = rng.int(list.length);
        const b = (a + 1 + rng.int(list.length - 1)) % list.length;
        return [list[a]!, list[b]!] as const;
      });
      const batch = new Float32Array(2 * perStep * size);
      pairs.forEach(([a, b], i) => {
        batch.set(values[slot.get(`${a.part}:${a.index}`)!]!, i * size);
        batch.set(values[slot.get(`${b.part}:${b.index}`)!]!, (i + perStep) * size);
      });
      const x = tf.tensor4d(batch, [2 * perStep, ...(shape as [number, number, number])]);
      const cost = optimizer.minimize(
        () => {
          const features = lastBlockFeatures(block, x);
          const z = tf.matMul(tf.relu(tf.matMul(features, projection[0]!)), projection[1]!);
          return ntXentLoss(z as tf.Tensor2D, options.temperature);
        },
        true,
        [...block.trained, ...projection],
      );
      x.dispose();
      losses.push((await cost!.data())[0]!);
      cost!.dispose();
      progress?.update(step + 1);
    }
    progress?.stop(`pretraining: ${options.steps} steps on ${videos.length} videos, loss ${losses[0]?.toFixed(3)} → ${losses.at(-1)?.toFixed(3)}`);
  } finally {
    block.trained.forEach((v, i) => (v.trainable = wasTrainable[i]!));
    optimizer.dispose();
    tf.dispose(projection);
  }
  return { losses, videos: videos.length, frames: frames.length, seconds: (Date.now() - started) / 1000 };
}
