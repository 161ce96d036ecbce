// The one place where pixels become network input. Everything (trainer, CLI, server, page)
// calls this with the model's PretrainedCfg; nothing else scales or reorders channels.
// Pure TypeScript on typed arrays so that the browser page uses the very same code.
import { applySector, fitSector, type RgbFrame } from '../data/sector.js';
import { gaussianBlurInPlace } from './blur.js';
import type { PretrainedCfg } from './types.js';

/**
 * Converts interleaved 8-bit RGB pixels (already resized to cfg.inputSize, H×W×3) into the
 * network's input layout H×W×C (C = cfg.channels) as float32.
 * Grey models (1 channel, or cfg.colour 'grey' on an RGB network) take the Rec. 601 luma, because
 * ultrasound frames are grey images stored as RGB and a colour tint from a screen capture carries
 * no diagnostic information.
 */
export function pixelsToInput(rgb: Uint8Array | Uint8ClampedArray, cfg: PretrainedCfg): Float32Array {
  const [height, width] = cfg.inputSize;
  if (cfg.blur && cfg.channels === 3 && cfg.colour === 'grey') {
    // The three channels are one luma plane under three affine maps, and the low-pass is linear
    // with taps that sum to one: the plane is blurred once, then mapped (the same values to float
    // rounding as blurring each channel).
    const pixels = height * width;
    checkPixels(rgb, cfg);
    const plane = new Float32Array(pixels);
    for (let i = 0; i < pixels; i++) plane[i] = luma(rgb, i);
    gaussianBlurInPlace(plane, height, width, 1, 0, cfg.blur);
    const out = new Float32Array(pixels * 3);
    for (let i = 0; i < pixels; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] = (plane[i]! - cfg.mean[c]!) / cfg.std[c]!;
    return out;
  }
  const out = normalisedInput(rgb, cfg);
  // cfg.blur: the low-pass runs on the normalised planes (linear, so the same as blurring the
  // pixels first, without rounding them back to 8 bits).
  if (cfg.blur) for (let c = 0; c < cfg.channels; c++) gaussianBlurInPlace(out, height, width, cfg.channels, c, cfg.blur);
  return out;
}

/** Rec. 601 luma of pixel i, in [0, 1]. */
const luma = (rgb: Uint8Array | Uint8ClampedArray, i: number): number => (0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!) / 255;

function checkPixels(rgb: Uint8Array | Uint8ClampedArray, cfg: PretrainedCfg): void {
  const [height, width] = cfg.inputSize;
  if (rgb.length !== height * width * 3) throw new Error(`expected ${height}x${width}x3 = ${height * width * 3} RGB values, got ${rgb.length}`);
}

function normalisedInput(rgb: Uint8Array | Uint8ClampedArray, cfg: PretrainedCfg): Float32Array {
  const [height, width] = cfg.inputSize;
  const pixels = height * width;
  checkPixels(rgb, cfg);
  const out = new Float32Array(pixels * cfg.channels);
  if (cfg.channels === 1) {
    const mean = cfg.mean[0] ?? 0;
    const std = cfg.std[0] ?? 1;
    for (let i = 0; i < pixels; i++) out[i] = (luma(rgb, i) - mean) / std;
    return out;
  }
  if (cfg.colour === 'grey') {
    for (let i = 0; i < pixels; i++) {
      const y = luma(rgb, i);
      for (let c = 0; c < 3; c++) out[i * 3 + c] = (y - cfg.mean[c]!) / cfg.std[c]!;
    }
    return out;
  }
  const order = cfg.channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) {
      const value = rgb[i * 3 + order[c]!]! / 255;
      out[i * 3 + c] = (value - cfg.mean[c]!) / cfg.std[c]!;
    }
  }
  return out;
}

/**
 * A config's preprocessing as data/ takes it (InputPreprocessor in src/data/types.ts, matched by
 * shape: models/ and data/ do not import each other).
 */
export function preprocessorFor(cfg: PretrainedCfg): {
  inputSize: readonly [number, number];
  channels: number;
  key: string;
  toInput(rgb: Uint8Array): Float32Array;
} {
  const [h, w] = cfg.inputSize;
  return {
    inputSize: cfg.inputSize,
    channels: cfg.channels,
    key: `${cfg.id}|${h}x${w}x${cfg.channels}|${cfg.channelOrder}|${cfg.colour ?? 'rgb'}|${cfg.mean.join(',')}|${cfg.std.join(',')}${cfg.blur ? `|blur${cfg.blur}` : ''}`,
    toInput: (rgb) => pixelsToInput(rgb, cfg),
  };
}

/** Inverse of pixelsToInput for display (maps, class visualisation): network input → 8-bit RGB. */
export function inputToPixels(input: Float32Array, cfg: PretrainedCfg): Uint8ClampedArray {
  const [height, width] = cfg.inputSize;
  const pixels = height * width;
  const out = new Uint8ClampedArray(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    if (cfg.channels === 1) {
      const v = (input[i]! * (cfg.std[0] ?? 1) + (cfg.mean[0] ?? 0)) * 255;
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = v;
    } else {
      const order = cfg.channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
      for (let c = 0; c < 3; c++) {
        out[i * 3 + order[c]!] = (input[i * 3 + c]! * cfg.std[c]! + cfg.mean[c]!) * 255;
      }
    }
  }
  return out;
}

/**
 * The network inputs of one clip's frames (an image is a clip of one), already at cfg.inputSize:
 * with cfg.sector, the imaging sector is fitted on all of the clip's frames and applied to each
 * first — the same function for the CLI, the server, the page and explanations.
 */
export function clipInputs(frames: readonly RgbFrame[], cfg: PretrainedCfg): Float32Array[] {
  if (!cfg.sector || frames.length === 0) return frames.map((f) => pixelsToInput(f.rgb, cfg));
  const sector = fitSector(frames);
  return frames.map((f) => pixelsToInput(applySector(f, sector, cfg.sector!).rgb, cfg));
}
