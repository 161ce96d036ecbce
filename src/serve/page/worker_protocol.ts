// The messages between the page's main thread (model_client.ts) and its model worker
// (model_worker.ts). Pixels travel as transferred buffers, never copied: native frames to the
// worker, the model-size frames and the Grad-CAM overlay back.
import type { AdaptResult, AdaptSettings } from '../../adapt/adapt.js';
import type { DecisionFrame, DecisionOutput } from '../../decision/core.js';
import type { ModelDirMeta } from '../../model_dir/meta.js';
import type { DecideSource } from './decision_frames.js';

/** The file the worker is bundled to by scripts/build-page.mjs, next to app.js. */
export const MODEL_WORKER_FILE = 'model-worker.js';

/** The distinct buffers under `arrays`, to hand over with a message rather than copy. */
export function transferList(arrays: readonly Uint8Array[]): ArrayBuffer[] {
  return [...new Set(arrays.map((a) => a.buffer as ArrayBuffer))];
}

export type { DecideSource };

export type ToWorker =
  /** Load the backend and the model folder at `base` (the page's folder); `threads`: at most this many. */
  | { type: 'load'; base: string; threads?: number }
  | { type: 'decide'; id: number; kind: 'image' | 'video'; source: DecideSource }
  /** Stop job `id` at the next frame boundary; it answers 'cancelled' and never a result. */
  | { type: 'cancel'; id: number }
  | AdaptCall;

/**
 * "Adapt to my data" (adapt_worker.ts). Each is answered by a 'reply' whose value is AdaptReplies[type],
 * or an 'error'; 'adapt-run' sends 'progress' on the way and can be cancelled.
 */
export type AdaptCall =
  /** A labelled file's frames (id: the page's number for the file), to wait for 'adapt-run'. */
  | { type: 'adapt-add'; id: number; name: string; kind: 'image' | 'video'; source: DecideSource }
  /** Files no longer wanted (all without `files`). */
  | { type: 'adapt-remove'; id: number; files?: number[] }
  /** Settings left out take the defaults (ModelInfo.adaptDefaults). */
  | { type: 'adapt-run'; id: number; files: { id: number; label: string; group: string }[]; settings: Partial<AdaptSettings> }
  | { type: 'adapt-export'; id: number }
  | { type: 'adapt-import'; id: number; text: string; source: string }
  | { type: 'adapt-reset'; id: number };

/** What the page shows of the adapted model in use. */
export interface AdaptedSummary {
  createdAt: string;
  mode: string;
  trainFrames: number;
  heldOutFrames: number;
  /** Held-back frame accuracy of the shipped and the adapted model. */
  before: number;
  after: number;
}

export interface AdaptReplies {
  'adapt-add': { frames: number; flagged: number };
  'adapt-remove': null;
  'adapt-run': { result: AdaptResult; kept: boolean; keepProblem?: string; adapted?: AdaptedSummary };
  'adapt-export': { json: string; fileName: string };
  'adapt-import': { adapted?: AdaptedSummary };
  'adapt-reset': { adapted?: AdaptedSummary };
}

/**
 * When each step of the model's load ended, in ms since the epoch (performance.timeOrigin + now(),
 * comparable between the page and its worker): the worker created, its script fetched and
 * evaluated (TF.js and the decision code), the wasm backend started, the model files fetched and
 * checked (these two run together), the members built, and ready (kept adaptations restored).
 */
export interface LoadTimings {
  workerCreated: number;
  scriptEvaluated: number;
  backendReady: number;
  filesFetched: number;
  membersBuilt: number;
  ready: number;
}

export interface ModelInfo {
  meta: ModelDirMeta;
  loadTimings: LoadTimings;
  backend: 'wasm' | 'cpu';
  threads: number;
  simd: boolean;
  crossOriginIsolated: boolean;
  /** Why the member files could not be checked against their digests, when they could not. */
  unchecked?: string;
  /** How the members' weights are stored: float32, float16, uint8 (export --weights-dtype) or mixed. */
  weightsDtype: string;
  /** The members share their frozen backbone, which runs once per frame (member_forwards.ts). */
  sharedTrunk: boolean;
  /** How many weights every member reads from the folder's one shared file (0: none shared). */
  sharedWeights: number;
  /** The adaptation kept in this browser and in use, when there is one. */
  adapted?: AdaptedSummary;
  /** Why a kept adaptation could not be used. */
  adaptProblem?: string;
  /**
   * What "Adapt to my data" does unless told otherwise (src/adapt/adapt.ts): the settings of each
   * mode, and the mode offered first (a new layer for a model that trained every layer, whose
   * "head" is the whole network: minutes rather than seconds in a browser).
   */
  adaptDefaults: { mode: AdaptSettings['mode']; settings: Record<AdaptSettings['mode'], AdaptSettings> };
}

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'load-error'; message: string }
  /** `stage`: what an adaptation is doing (features, then training); absent for a decision's frames. */
  | { type: 'progress'; id: number; done: number; total: number; stage?: 'features' | 'training' }
  | { type: 'reply'; id: number; value: unknown }
  /** `frames`: the decision's frames at the model's input size (without the guard's copies). */
  | { type: 'result'; id: number; output: DecisionOutput; frames: DecisionFrame[] }
  | { type: 'cancelled'; id: number }
  | { type: 'error'; id: number; message: string };
