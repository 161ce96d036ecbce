// The one decision, for the CLI, the server and the in-browser page: frames in → not-ultrasound
// guard → forward pass of every ensemble member → ensemble → video decision → the frame shown →
// Grad-CAM of the members → result. The front ends differ only in how they get frames (ffmpeg and
// sharp in Node, the browser's decoders and ffmpeg.wasm in the page) and how a member's forward
// pass runs (ONNX Runtime or TF.js); every rule is here, the prediction set included.
//
// Browser-safe: TF.js and plain TypeScript, no Node module (a test bundles it for the browser).
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ConformalCalibration } from '../eval/conformal.js';
import { gradCam } from '../explain/gradcam.js';
import { overlayMap } from '../explain/overlay.js';
import { GUARD_SIZE } from '../guard/features.js';
import { checkFrame, type GuardStats } from '../guard/guard.js';
import { clipInputs } from '../models/preprocess.js';
import type { PretrainedCfg } from '../models/types.js';
import { classifyInputsWith, type MemberForward } from './classify.js';
import { argMax, byClass, decide, type FrameScores, type Uncertainty, type VideoAggregation } from './combine.js';
import { predictionSetOf, type PredictionSet } from './prediction_set.js';

/** Verdict of the not-ultrasound guard (src/guard); `threshold` when it is the fitted guard. */
export interface GuardResult {
  flagged: boolean;
  reason: string;
  score: number;
  threshold?: number;
}

/** Called on every frame (RGB, width×height) before any diagnosis is given. */
export type Guard = (rgb: Uint8Array, width: number, height: number) => GuardResult | Promise<GuardResult>;

/** The guard fitted on a model's training frames (pocovid.json "guard"). */
export function storedGuard(stats: GuardStats): Guard {
  return (rgb, width, height) => checkFrame(rgb, width, height, stats);
}

/**
 * The side of the square frame the guard must be given, when it is not the model's input.
 * The stored guard was fitted on dataset frames (224² for real data) scored at GUARD_SIZE²; a
 * frame resized to a smaller model input (the demo's 64²) has lost the speckle texture it
 * measures, so for such models each frame is also resized to GUARD_SIZE² from the same decoded
 * pixels. A guard passed in by a caller gets the model-size frames.
 */
export function guardFrameSide(cfg: Pick<PretrainedCfg, 'inputSize'>, guard: 'stored' | 'custom' | 'none'): number | undefined {
  const [height, width] = cfg.inputSize;
  return guard === 'stored' && (width < GUARD_SIZE || height < GUARD_SIZE) ? GUARD_SIZE : undefined;
}

/** One decoded frame, at the model's input size (and at the guard's when guardFrameSide says so). */
export interface DecisionFrame {
  /** Position among the frames kept (0 for an image). */
  index: number;
  /** Seconds from the start (0 for an image). */
  time: number;
  /** Interleaved 8-bit RGB at the model's input size. */
  rgb: Uint8Array;
  /** The same frame at guardFrameSide², when the guard needs it. */
  guardFrame?: { rgb: Uint8Array; width: number; height: number };
}

export interface FrameResult {
  index: number;
  time: number;
  /** null when the guard flagged this frame. */
  label: string | null;
  probabilities: Record<string, number>;
  guard?: GuardResult;
}

/** The result of one image or video: the shape of one element of `pocovid predict --json`. */
export interface PredictionResult {
  kind: 'image' | 'video';
  /** Container or image format, from the bytes. */
  format?: string;
  /** null when the guard refused the input: no diagnosis. */
  label: string | null;
  probabilities: Record<string, number> | null;
  confidence: number | null;
  uncertainty: Uncertainty | null;
  /** Set when the uncertainty is high enough to doubt the label (see uncertaintyWarning). */
  warning?: string;
  /** The conformal prediction set, when the model carries a calibration for this level (see decideFrames). */
  predictionSet?: PredictionSet;
  /** Videos: how the frames were combined. */
  aggregation?: VideoAggregation;
  frames?: FrameResult[];
  /** Grad-CAM overlay (PNG data URL) of the image, or of the video frame most typical of the label. */
  heatmap?: string;
  /** Videos: the frame the heatmap shows. */
  heatmapFrame?: number;
  guard?: GuardResult;
}

/** What the decision needs of a model; only `forwards` differs between the front ends. */
export interface DecisionModel {
  classes: readonly string[];
  cfg: PretrainedCfg;
  /** TF.js members: Grad-CAM and Monte-Carlo dropout need their gradients and live dropout. */
  members: tfl.LayersModel[];
  /** Each member's plain forward pass (ONNX Runtime or TF.js), in member order. */
  forwards: MemberForward[];
  /** The guard, or undefined for none (--no-guard, or a model without one). */
  guard?: Guard;
  /** The model folder's split-conformal calibration (pocovid.json "conformal"), when it has one. */
  conformal?: ConformalCalibration;
}

export interface DecideOptions {
  /** Video decision: mean probability (default) or majority vote of the frames. */
  aggregation?: VideoAggregation;
  /** Compute the Grad-CAM overlay of the frame shown. */
  heatmap?: boolean;
  /** Monte-Carlo dropout passes per member for the uncertainty (0 = off). */
  mcDropout?: number;
  /** Seed of the MC-dropout masks. */
  seed?: number;
  /** Frames per forward pass (classify.ts's default when unset); the page uses 1 for progress per frame. */
  batchSize?: number;
  /** Frames classified so far and in all, after each batch (awaited; throwing from it cancels). */
  onProgress?: (done: number, total: number) => void | Promise<void>;
}

export interface DecisionOutput {
  /** Without `heatmap` (the front end encodes heatmapRgb its own way) and without `format`. */
  result: PredictionResult;
  /** Position in `frames` of the frame shown with the result (the one most typical of the label). */
  shown?: number;
  /** Grad-CAM overlay of the frame shown, at the model's input size, when asked for. */
  heatmapRgb?: Uint8Array;
}

/** Normalised entropy at or above which the label is marked uncertain (top class ≈ 0.8 of 3). */
export const HIGH_ENTROPY = 0.6;
/** Ensemble or MC-dropout spread (mean per-class std) at or above which the members disagree. */
export const HIGH_SPREAD = 0.15;

/** A warning in words when the uncertainty is high, else undefined. */
export function uncertaintyWarning(u: Uncertainty): string | undefined {
  const reasons: string[] = [];
  if (u.entropy >= HIGH_ENTROPY) reasons.push(`entropy ${u.entropy.toFixed(2)} ≥ ${HIGH_ENTROPY}`);
  if (u.ensembleStd !== null && u.ensembleStd >= HIGH_SPREAD) reasons.push(`ensemble members disagree (spread ${u.ensembleStd.toFixed(2)} ≥ ${HIGH_SPREAD})`);
  if (u.mcDropoutStd !== null && u.mcDropoutStd >= HIGH_SPREAD) reasons.push(`MC-dropout spread ${u.mcDropoutStd.toFixed(2)} ≥ ${HIGH_SPREAD}`);
  return reasons.length === 0 ? undefined : `high uncertainty: ${reasons.join('; ')}`;
}

/** The guard's verdict on a whole input: refused when most of its frames are flagged. */
function summariseGuard(guards: GuardResult[], usable: number): GuardResult {
  if (guards.length === 1) return guards[0]!;
  const flagged = guards.filter((g) => g.flagged);
  const score = guards.reduce((a, g) => a + g.score, 0) / guards.length;
  const isFlagged = usable === 0 || usable * 2 < guards.length;
  return {
    flagged: isFlagged,
    reason: isFlagged ? `${flagged.length} of ${guards.length} frames flagged: ${flagged[0]?.reason ?? ''}` : `${flagged.length} of ${guards.length} frames flagged`,
    score,
  };
}

export interface GuardOutcome {
  /** Per frame (undefined without a guard). */
  verdicts: (GuardResult | undefined)[];
  /** Positions of the frames the guard passed (all without a guard). */
  usable: number[];
  /** The verdict on the whole input (undefined without a guard). */
  summary?: GuardResult;
  /** No diagnosis: no frame passed, or fewer than half did. */
  refused: boolean;
}

/**
 * The guard on every frame (on its own frames where the front end made them), and the rule that
 * decides from the verdicts: frames it flags take no part, and when most are flagged the input
 * gets no diagnosis. `explain` applies it too.
 */
export async function guardFrames(guard: Guard | undefined, frames: DecisionFrame[], cfg: Pick<PretrainedCfg, 'inputSize'>): Promise<GuardOutcome> {
  const [height, width] = cfg.inputSize;
  const verdicts: (GuardResult | undefined)[] = [];
  for (const f of frames) {
    if (!guard) verdicts.push(undefined);
    else if (f.guardFrame) verdicts.push(await guard(f.guardFrame.rgb, f.guardFrame.width, f.guardFrame.height));
    else verdicts.push(await guard(f.rgb, width, height));
  }
  const usable = frames.map((_, i) => i).filter((i) => !verdicts[i]?.flagged);
  const refused = usable.length === 0 || usable.length * 2 < frames.length;
  return { verdicts, usable, refused, ...(guard ? { summary: summariseGuard(verdicts as GuardResult[], usable.length) } : {}) };
}

/** Grad-CAM of `classIndex` averaged over the members, normalised to [0, 1], over the frame. */
function heatmapOf(model: DecisionModel, frame: DecisionFrame, input: Float32Array, classIndex: number): Uint8Array {
  const { cfg } = model;
  const [height, width] = cfg.inputSize;
  const maps = tf.tidy(() => {
    const x = tf.tensor4d(input, [1, height, width, cfg.channels]);
    return model.members.map((m) => gradCam(m, x, cfg.camLayer, classIndex).map);
  });
  const mean = new Float32Array(width * height);
  for (const map of maps) for (let i = 0; i < mean.length; i++) mean[i]! += map[i]! / maps.length;
  const peak = mean.reduce((a, b) => Math.max(a, b), 0);
  if (peak > 0) for (let i = 0; i < mean.length; i++) mean[i]! /= peak;
  const overlay = overlayMap(frame.rgb, width, height, mean);
  return new Uint8Array(overlay.buffer, overlay.byteOffset, overlay.length);
}

/**
 * The calibration level of a decision: an image is a frame; a video is one when its probabilities
 * are the mean of its frames', as the video scores were calibrated (src/eval/conformal_rows.ts).
 * A vote's shares of frames are another quantity, for which those scores promise nothing: no set.
 */
function setLevel(kind: 'image' | 'video', aggregation: VideoAggregation): 'frame' | 'video' | undefined {
  if (kind === 'image') return 'frame';
  return aggregation === 'mean' ? 'video' : undefined;
}

/**
 * Decides an image (one frame) or a video (its sampled frames). Frames the guard flags take no
 * part in the decision; when most frames are flagged there is no diagnosis (label null).
 */
export async function decideFrames(model: DecisionModel, frames: DecisionFrame[], kind: 'image' | 'video', options: DecideOptions = {}): Promise<DecisionOutput> {
  if (frames.length === 0) throw new Error('decideFrames: no frames');
  const { cfg, classes } = model;
  const [height, width] = cfg.inputSize;
  const aggregation = options.aggregation ?? 'mean';
  const guarded = await guardFrames(model.guard, frames, cfg);
  const guards = guarded.verdicts;
  // With cfg.sector the sector is fitted on the whole clip, as in training (models/preprocess.ts).
  const inputs = clipInputs(frames.map((f) => ({ width, height, rgb: f.rgb })), cfg);
  const scores = await classifyInputsWith(model.members, model.forwards, inputs, [height, width, cfg.channels], {
    mcDropout: options.mcDropout,
    seed: options.seed,
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const frameResults: FrameResult[] = frames.map((f, i) => ({
    index: f.index,
    time: f.time,
    label: guards[i]?.flagged ? null : classes[argMax(scores[i]!.probabilities)]!,
    probabilities: byClass(classes, scores[i]!.probabilities),
    ...(guards[i] ? { guard: guards[i] } : {}),
  }));
  const result: PredictionResult = {
    kind,
    label: null,
    probabilities: null,
    confidence: null,
    uncertainty: null,
    ...(kind === 'video' ? { aggregation, frames: frameResults } : {}),
  };
  const usable = guarded.usable.map((i) => ({ s: scores[i]!, i }));
  if (guarded.summary) result.guard = guarded.summary;
  if (guarded.refused) return { result };
  const decision = decide(usable.map(({ s }) => s as FrameScores), aggregation);
  result.label = classes[decision.classIndex]!;
  result.probabilities = byClass(classes, decision.probabilities);
  result.confidence = decision.confidence;
  result.uncertainty = decision.uncertainty;
  const warning = uncertaintyWarning(decision.uncertainty);
  if (warning) result.warning = warning;
  const level = setLevel(kind, aggregation);
  const set = model.conformal && level ? predictionSetOf(model.conformal, level, decision.probabilities, classes) : undefined;
  if (set) result.predictionSet = set;
  // The frame shown: the usable one that gives the decided class its highest probability.
  const shown = usable.reduce((a, b) => (b.s.probabilities[decision.classIndex]! > a.s.probabilities[decision.classIndex]! ? b : a)).i;
  const output: DecisionOutput = { result, shown };
  if (options.heatmap) {
    output.heatmapRgb = heatmapOf(model, frames[shown]!, inputs[shown]!, decision.classIndex);
    if (kind === 'video') result.heatmapFrame = frames[shown]!.index;
  }
  return output;
}
