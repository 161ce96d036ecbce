// Colour map and overlay for explanation maps. Pure TypeScript on typed arrays, so the page uses
// the same code as Node (PNG encoding happens elsewhere: sharp in Node, a canvas in the browser).

/** Jet colour map: 0 → dark blue, 0.5 → green/yellow, 1 → dark red. Returns 8-bit RGB. */
export function jet(value: number): [number, number, number] {
  const v = Math.min(1, Math.max(0, value));
  const channel = (centre: number): number => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - centre))));
  return [channel(3), channel(2), channel(1)];
}

/**
 * Blends a [0,1] map (same H×W as the frame) over interleaved RGB pixels.
 * The colour's weight grows with the map value so that regions without evidence stay readable.
 */
export function overlayMap(
  rgb: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  map: Float32Array,
  alpha = 0.5,
): Uint8ClampedArray<ArrayBuffer> {
  const pixels = width * height;
  if (rgb.length !== pixels * 3) throw new Error(`overlay: expected ${pixels * 3} RGB values, got ${rgb.length}`);
  if (map.length !== pixels) throw new Error(`overlay: expected a ${width}x${height} map, got ${map.length} values`);
  const out = new Uint8ClampedArray(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const value = map[i]!;
    const colour = jet(value);
    const weight = alpha * (0.35 + 0.65 * value);
    for (let c = 0; c < 3; c++) out[i * 3 + c] = (1 - weight) * rgb[i * 3 + c]! + weight * colour[c]!;
  }
  return out;
}

/** Interleaved RGB → RGBA (opaque), e.g. for a canvas ImageData. */
export function rgbToRgba(rgb: Uint8Array | Uint8ClampedArray): Uint8ClampedArray<ArrayBuffer> {
  const pixels = rgb.length / 3;
  const out = new Uint8ClampedArray(pixels * 4);
  for (let i = 0; i < pixels; i++) {
    out[i * 4] = rgb[i * 3]!;
    out[i * 4 + 1] = rgb[i * 3 + 1]!;
    out[i * 4 + 2] = rgb[i * 3 + 2]!;
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** RGBA (canvas ImageData) → interleaved RGB. */
export function rgbaToRgb(rgba: Uint8Array | Uint8ClampedArray): Uint8Array {
  const pixels = rgba.length / 4;
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    out[i * 3] = rgba[i * 4]!;
    out[i * 3 + 1] = rgba[i * 4 + 1]!;
    out[i * 3 + 2] = rgba[i * 4 + 2]!;
  }
  return out;
}
