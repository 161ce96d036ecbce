// A separable Gaussian low-pass on one plane of a network input (pure TypeScript: the page uses it
// too). Why it exists: a frozen ImageNet backbone reacts to changes far below what a clinician can
// see (one grey level of noise, another JPEG decoder or resize kernel), and those changes live in
// the highest spatial frequencies; ultrasound findings (pleura, B-lines, consolidations) are many
// pixels wide at 224². Smoothing before the network removes what a codec or a resize changes and
// keeps what the decision needs (docs/results.md, "Stability of decisions").

/** Normalised 1-d Gaussian taps for `sigma` (in pixels), radius ⌈3σ⌉. */
export function gaussianTaps(sigma: number): Float32Array {
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new Error(`blur sigma must be a positive number, got ${sigma}`);
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const taps = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let k = -radius; k <= radius; k++) {
    const w = Math.exp(-(k * k) / (2 * sigma * sigma));
    taps[k + radius] = w;
    sum += w;
  }
  for (let k = 0; k < taps.length; k++) taps[k]! /= sum;
  return taps;
}

/**
 * Filters channel `channel` of an interleaved H×W×C float plane in place with the same symmetric
 * `taps` along rows, then along columns; the edge pixel is repeated past the border, so a flat
 * picture stays flat.
 */
export function separableFilterInPlace(data: Float32Array, height: number, width: number, channels: number, channel: number, taps: ArrayLike<number>): void {
  const radius = (taps.length - 1) / 2;
  const line = new Float32Array(Math.max(height, width));
  // One line at a time: `lines` lines of `length` pixels, pixel i of line j at
  // channel + j·lineStride + i·pixelStride. Plain index arithmetic, and the border clamp only near
  // the border: this runs on every frame the model sees (three times per grey frame before).
  const pass = (lines: number, length: number, lineStride: number, pixelStride: number) => {
    for (let j = 0; j < lines; j++) {
      const base = channel + j * lineStride;
      for (let i = 0; i < length; i++) line[i] = data[base + i * pixelStride]!;
      for (let i = 0; i < length; i++) {
        let acc = 0;
        if (i >= radius && i < length - radius) {
          for (let k = -radius; k <= radius; k++) acc += taps[k + radius]! * line[i + k]!;
        } else {
          for (let k = -radius; k <= radius; k++) acc += taps[k + radius]! * line[Math.min(length - 1, Math.max(0, i + k))]!;
        }
        data[base + i * pixelStride] = acc;
      }
    }
  };
  pass(height, width, width * channels, channels);
  pass(width, height, channels, width * channels);
}

/** A Gaussian of `sigma` pixels on channel `channel` of an interleaved float plane, in place; a row's sum is kept. */
export function gaussianBlurInPlace(data: Float32Array, height: number, width: number, channels: number, channel: number, sigma: number): void {
  separableFilterInPlace(data, height, width, channels, channel, gaussianTaps(sigma));
}
