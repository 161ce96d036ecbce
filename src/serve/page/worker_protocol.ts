// The messages between the page's main thread (model_client.ts) and its model worker
// (model_worker.ts). Pixels travel as transferred buffers, never copied: native frames to the
// worker, the model-size frames and the Grad-CAM overlay back.
import type { DecisionFrame, DecisionOutput } from '../../decision/core.js';
import type { ModelDirMeta } from '../../model_dir/meta.js';
import type { EncodedImage } from './browser_image.js';
import type { NativeFrame } from './decision_frames.js';

/** The file the worker is bundled to by scripts/build-page.mjs, next to app.js. */
export const MODEL_WORKER_FILE = 'model-worker.js';

/** The distinct buffers under `arrays`, to hand over with a message rather than copy. */
export function transferList(arrays: readonly Uint8Array[]): ArrayBuffer[] {
  return [...new Set(arrays.map((a) => a.buffer as ArrayBuffer))];
}

/** What a decision starts from: decoded native frames (videos, BMP), or an image file the worker decodes. */
export type DecideSource = { frames: NativeFrame[] } | { image: EncodedImage };

export type ToWorker =
  /** Load the backend and the model folder at `base` (the page's folder); `threads`: at most this many. */
  | { type: 'load'; base: string; threads?: number }
  | { type: 'decide'; id: number; kind: 'image' | 'video'; source: DecideSource }
  /** Stop job `id` at the next frame boundary; it answers 'cancelled' and never a result. */
  | { type: 'cancel'; id: number };

export interface ModelInfo {
  meta: ModelDirMeta;
  backend: 'wasm' | 'cpu';
  threads: number;
  simd: boolean;
  crossOriginIsolated: boolean;
  /** Why the member files could not be checked against their digests, when they could not. */
  unchecked?: string;
  /** How the members' weights are stored: float32, float16, uint8 (export --weights-dtype) or mixed. */
  weightsDtype: string;
}

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'load-error'; message: string }
  | { type: 'progress'; id: number; done: number; total: number }
  /** `frames`: the decision's frames at the model's input size (without the guard's copies). */
  | { type: 'result'; id: number; output: DecisionOutput; frames: DecisionFrame[] }
  | { type: 'cancelled'; id: number }
  | { type: 'error'; id: number; message: string };
