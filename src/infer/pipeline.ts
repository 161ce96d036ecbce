// The Node inference pipeline (CLI and server): loads a model folder or run, makes each member's
// forward pass (ONNX Runtime where it loads, else TF.js), decodes files into frames at the model's
// input size (and at the guard's from the same pixels when it needs its own), and hands them to
// the one decision core (src/decision/core.ts), which the in-browser page calls too. The model's
// conformal calibration goes with it, so every answer carries its prediction set.
import { decideFrames, guardFrameSide, storedGuard, type DecisionFrame, type DecisionModel, type Guard, type PredictionResult } from '../decision/core.js';
import type { MemberForward } from '../decision/classify.js';
import type { VideoAggregation } from '../decision/combine.js';
import { initEngine } from '../engine/index.js';
import { PocovidError, UnknownChoiceError } from '../errors.js';
import { decodeDicomTo, decodeImageTo, decodeVideoTo, type Frame } from '../media/decode.js';
import type { SniffedType } from '../media/formats.js';
import type { DecodeLimits } from '../media/limits.js';
import { sniffFile } from '../media/sniff.js';
import type { LoadedModel } from '../model_dir/model_dir.js';
import { loadModel } from '../model_dir/run.js';
import { int8MemberFiles } from '../onnx/int8_model_dir.js';
import { chooseRuntime, createForwardRunner, createOrtRunner, parseRuntimeChoice, RUNTIME_CHOICES, type ForwardRunner, type Runtime, type RuntimeChoice } from '../onnx/runtime.js';
import { rgbToPngDataUrl } from './png.js';

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
  const stored = model.meta.guard;
  const guard: Guard | undefined = options.guard === false ? undefined : options.guard ?? (stored ? storedGuard(stored) : undefined);
  const guardSide = guardFrameSide(cfg, options.guard === false || !guard ? 'none' : options.guard ? 'custom' : 'stored');
  const alsoSizes: [number, number][] | undefined = guardSide ? [[guardSide, guardSide]] : undefined;
  const decodeOptions = (type?: SniffedType) => ({ ...(type ? { type } : {}), ...(options.limits ? { limits: options.limits } : {}), ...(alsoSizes ? { alsoSizes } : {}) });
  const conformal = model.meta.conformal;
  const decisionModel: DecisionModel = { classes, cfg, members: model.members, forwards, ...(guard ? { guard } : {}), ...(conformal ? { conformal } : {}) };

  const toDecisionFrame = (f: Frame): DecisionFrame => ({ index: f.index, time: f.time, rgb: f.rgb, ...(f.also?.[0] ? { guardFrame: f.also[0] } : {}) });

  async function run(frames: Frame[], kind: 'image' | 'video', type: SniffedType | undefined, call: VideoCallOptions): Promise<PredictionResult> {
    const { result, heatmapRgb } = await decideFrames(decisionModel, frames.map(toDecisionFrame), kind, {
      aggregation: call.aggregation,
      heatmap: call.heatmap ?? options.gradcam ?? false,
      mcDropout: options.mcDropout,
      seed: options.seed,
    });
    const { kind: k, ...rest } = result;
    return {
      kind: k,
      ...(type ? { format: type.format } : {}),
      ...rest,
      ...(heatmapRgb ? { heatmap: await rgbToPngDataUrl(heatmapRgb, width, height) } : {}),
    };
  }

  /** A video's sampled frames; a DICOM file is a cine loop or a single image, known once it is read. */
  async function clip(file: string, call: VideoCallOptions, type: SniffedType): Promise<PredictionResult> {
    const sampling = { fps: call.fps, maxFrames: call.maxFrames };
    if (type.format === 'dicom') {
      const dicom = await decodeDicomTo(file, width, height, sampling, decodeOptions(type));
      return run(dicom.frames, dicom.kind, type, call);
    }
    return run(await decodeVideoTo(file, width, height, sampling, decodeOptions(type)), 'video', type, call);
  }

  const pipeline: Pipeline = {
    model,
    classes,
    runtimes: runners.map((r) => r.runtime),
    precision,
    async predictImage(src, call = {}) {
      return run([await decodeImageTo(src, width, height, decodeOptions())], 'image', undefined, call);
    },
    async predictVideo(file, call = {}) {
      return clip(file, call, await sniffFile(file));
    },
    async predictFile(file, call = {}) {
      const type = await sniffFile(file);
      if (type.kind === 'image') return run([await decodeImageTo(file, width, height, decodeOptions(type))], 'image', type, call);
      return clip(file, call, type);
    },
    async dispose() {
      await Promise.all(runners.map((r) => r.dispose()));
      for (const m of model.members) m.dispose();
    },
  };
  return pipeline;
}
