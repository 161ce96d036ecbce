// Native-size frames → the decision core's frames: every frame resized by the one resize
// (src/media/resize.ts) to the model's input and, when the guard needs its own, to its scale. Runs
// in the model worker (model_worker.ts), so that 30 resizes never hold up the page's main thread;
// the main thread only decodes (browser decoders, ffmpeg.wasm) and hands the native pixels over.
import type { DecisionFrame } from '../../decision/core.js';
import { resizeRgb, type RgbImage } from '../../media/resize.js';
import { decodeBrowserImage, type EncodedImage } from './browser_image.js';

export interface FrameSizes {
  /** The model's input [height, width]. */
  input: readonly [number, number];
  /** Side of the guard's own frames, when it needs them (guardFrameSide). */
  guardSide?: number;
}

/** A decoded frame at its native size, as the main thread hands it to the worker. */
export interface NativeFrame extends RgbImage {
  /** Position among the frames kept (0 for an image). */
  index: number;
  /** Seconds from the start (0 for an image). */
  time: number;
}

export function toDecisionFrame(native: NativeFrame, sizes: FrameSizes): DecisionFrame {
  const [h, w] = sizes.input;
  const side = sizes.guardSide;
  return {
    index: native.index,
    time: native.time,
    rgb: resizeRgb(native.rgb, native.width, native.height, w, h),
    ...(side ? { guardFrame: { width: side, height: side, rgb: resizeRgb(native.rgb, native.width, native.height, side, side) } } : {}),
  };
}

/** What a decision starts from: decoded native frames (videos, BMP), or an image file the worker decodes. */
export type DecideSource = { frames: NativeFrame[] } | { image: EncodedImage };

/** What the main thread handed over (an image file, or decoded frames) → the decision's frames. */
export async function sourceFrames(source: DecideSource, sizes: FrameSizes): Promise<DecisionFrame[]> {
  const native: NativeFrame[] = 'image' in source ? [{ ...(await decodeBrowserImage(source.image)), index: 0, time: 0 }] : source.frames;
  return native.map((f) => toDecisionFrame(f, sizes));
}
