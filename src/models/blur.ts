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
 * Blurs channel `channel` of an interleaved H×W×C float plane in place, rows then columns; the edge
 * pixel is repeated past the border, so a flat picture stays flat and the sum of a row is kept.
 */
export function gaussianBlurInPlace(data: Float32Array, height: number, width: number, channels: number, channel: number, sigma: number): void {
  const taps = gaussianTaps(sigma);
  const radius = (taps.length - 1) / 2;
  const line = new Float32Array(Math.max(height, width));
  const at = (y: number, x: number) => (y * width + x) * channels + channel;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) line[x] = data[at(y, x)]!;
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++) acc += taps[k + radius]! * line[Math.min(width - 1, Math.max(0, x + k))]!;
      data[at(y, x)] = acc;
    }
  }
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) line[y] = data[at(y, x)]!;
    for (let y = 0; y < height; y++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++) acc += taps[k + radius]! * line[Math.min(height - 1, Math.max(0, y + k))]!;
      data[at(y, x)] = acc;
    }
  }
}
