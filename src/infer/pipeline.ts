// The one inference pipeline (CLI and server; the page runs the same steps from classify.ts,
// combine.ts, preprocess.ts and explain/): frames at the model's input size → pixelsToInput →
// every ensemble member → probabilities, label, confidence, uncertainty, and Grad-CAM when asked.
// A video is sampled into frames, each classified, and decided by mean probability (or vote).
import * as tf from '@tensorflow/tfjs-core';
import { gradCam } from '../explain/gradcam.js';
import { overlayMap } from '../explain/overlay.js';
import { initEngine } from '../engine/index.js';
import { clipInputs } from '../models/preprocess.js';
import { classifyInputsWith, type MemberForward } from './classify.js';
import { argMax, byClass, decide, type FrameScores, type Uncertainty, type VideoAggregation } from './combine.js';
import type { DecodeLimits } from '../media/ffmpeg.js';
import { sniffFile, type SniffedType } from '../media/sniff.js';
import { decodeDicomTo, decodeImageTo, decodeVideoTo, type Frame } from './media.js';
import { loadModel, type LoadedModel } from './model_dir.js';
import { checkFrame } from '../guard/guard.js';
import { GUARD_SIZE } from '../guard/features.js';
import { rgbToPngDataUrl } from './png.js';
import {
  chooseRuntime,
  createForwardRunner,
  createOrtRunner,
  parseRuntimeChoice,
  RUNTIME_CHOICES,
  type ForwardRunner,
  type Runtime,
  type RuntimeChoice,
} from '../onnx/index.js';
import { int8MemberFiles } from '../onnx/int8_model_dir.js';
import { PocovidError, UnknownChoiceError } from '../errors.js';

/** Verdict of the not-ultrasound guard (src/guard); `threshold` when it is the fitted guard. */
export interface GuardResult {
  flagged: boolean;
  reason: string;
  score: number;
  threshold?: number;
}
/** Called on every frame (RGB at the model's input size) before any diagnosis is given. */
export type Guard = (rgb: Uint8Array, width: number, height: number) => GuardResult | Promise<GuardResult>;

/** --runtime values: 'ort' (ONNX Runtime), 'tfjs' (the wasm engine), 'auto' (ort where it loads). */
export const RUNTIMES = RUNTIME_CHOICES;

/** --precision values: float32, or the int8 members `pocovid export --format onnx --int8` wrote (ONNX Runtime only). */
export type Precision = 'fp32' | 'int8';
export const PRECISIONS: readonly Precision[] = ['fp32', 'int8'];

export interface PipelineOptions {
  /**
   * Engine of the members' plain forward passes (default 'auto' = ONNX Runtime where it loads).
   * Grad-CAM and MC dropout always run on TF.js: they need gradients / live dropout.
   */
  runtime?: RuntimeChoice;
  /**
   * 'int8' runs each member's model.int8.onnx (a model folder's, made by export --int8) on ONNX
   * Runtime: 1.7–1.8× faster for VGG-16 and ResNet-18 on this project's CPUs. Default 'fp32'.
   */
  precision?: Precision;
  /** ONNX Runtime threads (default: $POCOVID_THREADS, else every core). */
  threads?: number;
  /** Where exported ONNX files are cached (default $POCOVID_CACHE/onnx); false: export in memory. */
  onnxCacheDir?: string | false;
  /** Where the one-line notice goes when 'auto' falls back to TF.js (default stderr). */
  notice?: (line: string) => void;
  /** Grad-CAM heatmap in every result unless a call says otherwise. */
  gradcam?: boolean;
  /** Monte-Carlo dropout passes per member for the uncertainty (0 = off). */
  mcDropout?: number;
  /** Seed of the MC-dropout masks. */
  seed?: number;
  /** Default: the guard stored with the model (fitted on its training frames); false: none. */
  guard?: Guard | false;
  /** Decoder limits (time, memory) for untrusted files. */
  limits?: Partial<DecodeLimits>;
  /** Load a run as one fold only. */
  fold?: number;
}

export interface FrameResult {
  index: number;
  time: number;
  label: string | null;
  probabilities: Record<string, number>;
  guard?: GuardResult;
}

export interface PredictionResult {
  kind: 'image' | 'video';
  format?: string;
  /** null when the guard flagged the input: no diagnosis. */
  label: string | null;
  probabilities: Record<string, number> | null;
  confidence: number | null;
  uncertainty: Uncertainty | null;
  /** Videos: how the frames were combined. */
  aggregation?: VideoAggregation;
  frames?: FrameResult[];
  /** Grad-CAM overlay (PNG data URL) of the image, or of the video frame most typical of the label. */
  heatmap?: string;
  heatmapFrame?: number;
  guard?: GuardResult;
}

export interface ImageCallOptions {
  heatmap?: boolean;
}
export interface VideoCallOptions extends ImageCallOptions {
  fps?: number;
  maxFrames?: number;
  aggregation?: VideoAggregation;
}

export interface Pipeline {
  model: LoadedModel;
  classes: string[];
  /** Engine of each member's forward pass, in member order. */
  runtimes: Runtime[];
  precision: Precision;
  predictImage(source: string | Uint8Array, options?: ImageCallOptions): Promise<PredictionResult>;
  predictVideo(file: string, options?: VideoCallOptions): Promise<PredictionResult>;
  /** Sniffs the file's bytes and runs predictImage or predictVideo. */
  predictFile(file: string, options?: VideoCallOptions): Promise<PredictionResult>;
  /** Frees the members and their ONNX Runtime sessions. */
  dispose(): Promise<void>;
}

export async function createPipeline(source: string | LoadedModel, options: PipelineOptions = {}): Promise<Pipeline> {
  const runtime = parseRuntimeChoice(options.runtime ?? 'auto');
  const precision = options.precision ?? 'fp32';
  if (!PRECISIONS.includes(precision)) throw new UnknownChoiceError('precision', precision, PRECISIONS);
  if (precision === 'int8' && runtime === 'tfjs') throw new PocovidError('--precision int8 runs on ONNX Runtime only; use --runtime ort or auto');
  await initEngine();
  const model = typeof source === 'string' ? await loadModel(source, options.fold) : source;
  const runners: ForwardRunner[] = [];
  // An ensemble's members run in turn for every frame; ORT threads left spinning by one member
  // would slow the next (OrtSessionOptions.spinning).
  const spinning = model.members.length === 1;
  try {
    if (precision === 'int8') {
      await chooseRuntime('ort');
      const files = int8MemberFiles(model.path, model.members.map((member, k) => ({ name: model.meta.members[k]!, model: member })));
      for (const [k, member] of model.members.entries()) runners.push(await createOrtRunner(member, files[k]!, { threads: options.threads, spinning }));
    } else {
      for (const member of model.members) {
        runners.push(await createForwardRunner(member, { runtime, threads: options.threads, spinning, cacheDir: options.onnxCacheDir, notice: options.notice }));
      }
    }
  } catch (error) {
    await Promise.all(runners.map((r) => r.dispose()));
    throw error;
  }
  // Members end in softmax: one output, n × classes.
  const forwards: MemberForward[] = runners.map((runner) => async (batch, n) => (await runner.run(batch, n))[0]!);
  const { cfg, classes } = model.meta;
  const [height, width] = cfg.inputSize;
  const inputShape: [number, number, number] = [height, width, cfg.channels];
  const storedGuard = model.meta.guard;
  const guard: Guard | undefined =
    options.guard === false ? undefined : options.guard ?? (storedGuard ? (rgb, w, h) => checkFrame(rgb, w, h, storedGuard) : undefined);

  // The stored guard was fitted on dataset frames (224² for real data) scored at GUARD_SIZE²; a
  // frame decoded at a smaller model input (the demo's 64²) has lost the speckle texture it
  // measures, so for such models it scores its own decode of the frame at GUARD_SIZE. (A guard
  // passed in options gets the model-size frames, as documented on Guard.)
  const guardNeedsOwnFrames = options.guard === undefined && storedGuard !== undefined && (width < GUARD_SIZE || height < GUARD_SIZE);

  async function guardFrames(frames: Frame[], guardSource?: () => Promise<Frame[]>): Promise<(GuardResult | undefined)[]> {
    if (!guard) return frames.map(() => undefined);
    let scored = frames;
    if (guardNeedsOwnFrames && guardSource) {
      const own = await guardSource();
      if (own.length === frames.length) scored = own;
    }
    const out: GuardResult[] = [];
    for (const f of scored) out.push(await guard(f.rgb, f.width, f.height));
    return out;
  }

  async function heatmapOf(frame: Frame, input: Float32Array, classIndex: number): Promise<string> {
    const maps = tf.tidy(() => {
      const x = tf.tensor4d(input, [1, ...inputShape]);
      return model.members.map((m) => gradCam(m, x, cfg.camLayer, classIndex).map);
    });
    const mean = new Float32Array(width * height);
    for (const map of maps) for (let i = 0; i < mean.length; i++) mean[i]! += map[i]! / maps.length;
    const peak = mean.reduce((a, b) => Math.max(a, b), 0);
    if (peak > 0) for (let i = 0; i < mean.length; i++) mean[i]! /= peak;
    return rgbToPngDataUrl(overlayMap(frame.rgb, width, height, mean), width, height);
  }

  async function run(
    frames: Frame[],
    kind: 'image' | 'video',
    type: SniffedType | undefined,
    call: VideoCallOptions,
    guardSource: () => Promise<Frame[]>,
  ): Promise<PredictionResult> {
    const aggregation = call.aggregation ?? 'mean';
    const guards = await guardFrames(frames, guardSource);
    const inputs = clipInputs(frames, cfg);
    const scores = await classifyInputsWith(model.members, forwards, inputs, inputShape, { mcDropout: options.mcDropout, seed: options.seed });
    const frameResults: FrameResult[] = frames.map((f, i) => ({
      index: f.index,
      time: f.time,
      label: guards[i]?.flagged ? null : classes[argMax(scores[i]!.probabilities)]!,
      probabilities: byClass(classes, scores[i]!.probabilities),
      ...(guards[i] ? { guard: guards[i] } : {}),
    }));
    const base: PredictionResult = {
      kind,
      ...(type ? { format: type.format } : {}),
      label: null,
      probabilities: null,
      confidence: null,
      uncertainty: null,
      ...(kind === 'video' ? { aggregation, frames: frameResults } : {}),
    };
    // Frames the guard flags take no part in the decision; if most are flagged there is none.
    const usable = scores.map((s, i) => ({ s, i })).filter(({ i }) => !guards[i]?.flagged);
    if (guard) base.guard = summariseGuard(guards as GuardResult[], usable.length);
    if (usable.length === 0 || usable.length * 2 < frames.length) return base;
    const decision = decide(usable.map(({ s }) => s as FrameScores), aggregation);
    const result: PredictionResult = {
      ...base,
      label: classes[decision.classIndex]!,
      probabilities: byClass(classes, decision.probabilities),
      confidence: decision.confidence,
      uncertainty: decision.uncertainty,
    };
    if (call.heatmap ?? options.gradcam ?? false) {
      const best = usable.reduce((a, b) => (b.s.probabilities[decision.classIndex]! > a.s.probabilities[decision.classIndex]! ? b : a));
      result.heatmap = await heatmapOf(frames[best.i]!, inputs[best.i]!, decision.classIndex);
      if (kind === 'video') result.heatmapFrame = frames[best.i]!.index;
    }
    return result;
  }

  const pipeline: Pipeline = {
    model,
    classes,
    runtimes: runners.map((r) => r.runtime),
    precision,
    async predictImage(src, call = {}) {
      const frame = await decodeImageTo(src, width, height, undefined, options.limits);
      return run([frame], 'image', undefined, call, async () => [await decodeImageTo(src, GUARD_SIZE, GUARD_SIZE, undefined, options.limits)]);
    },
    async predictVideo(file, call = {}) {
      const type = await sniffFile(file);
      const sampling = { fps: call.fps, maxFrames: call.maxFrames, limits: options.limits };
      if (type.format === 'dicom') {
        // A DICOM file is a cine loop or a single image; which one is known once it is read.
        const clip = await decodeDicomTo(file, width, height, sampling);
        return run(clip.frames, clip.kind, type, call, async () => (await decodeDicomTo(file, GUARD_SIZE, GUARD_SIZE, sampling)).frames);
      }
      const frames = await decodeVideoTo(file, width, height, sampling, type);
      return run(frames, 'video', type, call, () => decodeVideoTo(file, GUARD_SIZE, GUARD_SIZE, sampling, type));
    },
    async predictFile(file, call = {}) {
      const type = await sniffFile(file);
      if (type.kind === 'image') {
        const frame = await decodeImageTo(file, width, height, type, options.limits);
        return run([frame], 'image', type, call, async () => [await decodeImageTo(file, GUARD_SIZE, GUARD_SIZE, type, options.limits)]);
      }
      return pipeline.predictVideo(file, call);
    },
    async dispose() {
      await Promise.all(runners.map((r) => r.dispose()));
      for (const m of model.members) m.dispose();
    },
  };
  return pipeline;
}

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

