// Image statistics that tell a B-mode lung-ultrasound frame from other pictures. Pure TypeScript
// on 8-bit RGB so the browser page computes exactly the same numbers as the server.
//
// Why these: B-mode frames are grey (colour only in small overlays), sit on a black background
// (the area outside the probe's sector or around the image), and have speckle texture that is
// spatially correlated over a few pixels. Photographs are colourful or fill the frame; blank
// frames have no contrast; noise has no spatial correlation; screenshots and text are bimodal
// with sharp edges everywhere.

export const FEATURE_NAMES = [
  'colourfulness',
  'darkFraction',
  'lumaMean',
  'lumaStd',
  'neighbourCorrelation',
  'cornerDarkness',
  'edgeDensity',
  'histogramEntropy',
  'saturatedFraction',
  'mirrorSymmetry',
  'topBrightness',
  'bottomBrightness',
  'speckleContrast',
  'correlationAt4',
] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];

/** Plain-language reason per feature, used when a frame is flagged because of it. */
export const FEATURE_REASONS: Record<FeatureName, string> = {
  colourfulness: 'too colourful for a B-mode ultrasound image',
  darkFraction: 'the dark background of an ultrasound image is missing or too large',
  lumaMean: 'overall brightness unlike an ultrasound image',
  lumaStd: 'contrast unlike an ultrasound image',
  neighbourCorrelation: 'texture unlike ultrasound speckle (noise or flat areas)',
  cornerDarkness: 'corners are not dark as around an ultrasound sector or image',
  edgeDensity: 'edges unlike an ultrasound image (text, drawings or noise)',
  histogramEntropy: 'grey-level distribution unlike an ultrasound image',
  saturatedFraction: 'too many pure white pixels (text, drawings, overexposure)',
  mirrorSymmetry: 'not left-right symmetric like an ultrasound sector',
  topBrightness: 'brightness near the top unlike an ultrasound image',
  bottomBrightness: 'brightness near the bottom unlike an ultrasound image',
  speckleContrast: 'texture unlike ultrasound speckle',
  correlationAt4: 'texture scale unlike ultrasound speckle',
};

/** Frames are scored at this size whatever the model's input size, so one fit serves every model. */
export const GUARD_SIZE = 128;

/** Box-filter resize of 8-bit RGB (pure TS: the page uses it too). */
export function resizeRgb(rgb: ArrayLike<number>, width: number, height: number, outW: number, outH: number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(outW * outH * 3);
  for (let oy = 0; oy < outH; oy++) {
    const y0 = Math.floor((oy * height) / outH);
    const y1 = Math.max(y0 + 1, Math.floor(((oy + 1) * height) / outH));
    for (let ox = 0; ox < outW; ox++) {
      const x0 = Math.floor((ox * width) / outW);
      const x1 = Math.max(x0 + 1, Math.floor(((ox + 1) * width) / outW));
      let r = 0;
      let g = 0;
      let b = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const i = (y * width + x) * 3;
          r += rgb[i]!;
          g += rgb[i + 1]!;
          b += rgb[i + 2]!;
        }
      }
      const count = (y1 - y0) * (x1 - x0);
      const o = (oy * outW + ox) * 3;
      out[o] = r / count;
      out[o + 1] = g / count;
      out[o + 2] = b / count;
    }
  }
  return out;
}

export function luma(rgb: ArrayLike<number>, i: number): number {
  return (0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!) / 255;
}

/** Statistics of an RGB frame of any size (resized to GUARD_SIZE² first). */
export function frameFeatures(source: ArrayLike<number>, sourceWidth: number, sourceHeight: number): number[] {
  if (source.length !== sourceWidth * sourceHeight * 3) {
    throw new Error(`expected ${sourceWidth}x${sourceHeight}x3 values, got ${source.length}`);
  }
  const width = GUARD_SIZE;
  const height = GUARD_SIZE;
  const rgb = sourceWidth === width && sourceHeight === height ? source : resizeRgb(source, sourceWidth, sourceHeight, width, height);
  const n = width * height;
  const y = new Float32Array(n);
  let colour = 0;
  let dark = 0;
  let saturated = 0;
  let sum = 0;
  const histogram = new Float64Array(32);
  for (let i = 0; i < n; i++) {
    const r = rgb[i * 3]!;
    const g = rgb[i * 3 + 1]!;
    const b = rgb[i * 3 + 2]!;
    colour += (Math.max(r, g, b) - Math.min(r, g, b)) / 255;
    const v = luma(rgb, i);
    y[i] = v;
    sum += v;
    if (v < 0.06) dark += 1;
    if (v > 0.97) saturated += 1;
    histogram[Math.min(31, Math.floor(v * 32))]! += 1;
  }
  const mean = sum / n;
  let varSum = 0;
  for (let i = 0; i < n; i++) varSum += (y[i]! - mean) ** 2;
  const std = Math.sqrt(varSum / n);

  // Lag-1 correlation (right and down neighbours) over the whole frame.
  let cov = 0;
  let count = 0;
  let edges = 0;
  for (let row = 0; row < height - 1; row++) {
    for (let col = 0; col < width - 1; col++) {
      const i = row * width + col;
      const a = y[i]! - mean;
      cov += a * (y[i + 1]! - mean) + a * (y[i + width]! - mean);
      count += 2;
      const gradient = Math.abs(y[i + 1]! - y[i]!) + Math.abs(y[i + width]! - y[i]!);
      if (gradient > 0.25) edges += 1;
    }
  }
  const correlation = std > 1e-6 ? cov / count / (std * std) : 0;

  // Mean brightness of the four corner squares (1/8 of the side).
  const side = Math.max(1, Math.floor(Math.min(width, height) / 8));
  let cornerSum = 0;
  for (const [r0, c0] of [
    [0, 0],
    [0, width - side],
    [height - side, 0],
    [height - side, width - side],
  ] as const) {
    for (let r = r0; r < r0 + side; r++) for (let c = c0; c < c0 + side; c++) cornerSum += y[r * width + c]!;
  }
  const cornerDarkness = 1 - cornerSum / (4 * side * side);

  let entropy = 0;
  for (const h of histogram) {
    if (h > 0) {
      const p = h / n;
      entropy -= p * Math.log2(p);
    }
  }
  return [
    colour / n,
    dark / n,
    mean,
    std,
    correlation,
    cornerDarkness,
    edges / n,
    entropy / 5,
    saturated / n,
    mirrorCorrelation(y, width, height, mean, std),
    bandMean(y, width, 0, Math.floor(height / 3)),
    bandMean(y, width, Math.floor((2 * height) / 3), height),
    speckleContrast(y, width, height),
    lagCorrelation(y, width, height, 4, mean, std),
  ];
}

/** Correlation of the frame with its left-right mirror image: a probe's sector is symmetric. */
function mirrorCorrelation(y: Float32Array, width: number, height: number, mean: number, std: number): number {
  if (std < 1e-6) return 0;
  let sum = 0;
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) sum += (y[r * width + c]! - mean) * (y[r * width + (width - 1 - c)]! - mean);
  }
  return sum / (width * height) / (std * std);
}

function bandMean(y: Float32Array, width: number, rowStart: number, rowEnd: number): number {
  let sum = 0;
  for (let i = rowStart * width; i < rowEnd * width; i++) sum += y[i]!;
  return sum / ((rowEnd - rowStart) * width);
}

/** Median coefficient of variation of 8×8 blocks that are not background (speckle is ~0.3-0.8). */
function speckleContrast(y: Float32Array, width: number, height: number): number {
  const values: number[] = [];
  for (let r0 = 0; r0 + 8 <= height; r0 += 8) {
    for (let c0 = 0; c0 + 8 <= width; c0 += 8) {
      let sum = 0;
      let sq = 0;
      for (let r = r0; r < r0 + 8; r++) {
        for (let c = c0; c < c0 + 8; c++) {
          const v = y[r * width + c]!;
          sum += v;
          sq += v * v;
        }
      }
      const m = sum / 64;
      if (m < 0.08) continue;
      values.push(Math.sqrt(Math.max(sq / 64 - m * m, 0)) / m);
    }
  }
  if (values.length === 0) return 0;
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)]!;
}

function lagCorrelation(y: Float32Array, width: number, height: number, lag: number, mean: number, std: number): number {
  if (std < 1e-6) return 0;
  let sum = 0;
  let count = 0;
  for (let r = 0; r < height - lag; r++) {
    for (let c = 0; c < width - lag; c++) {
      const a = y[r * width + c]! - mean;
      sum += a * (y[r * width + c + lag]! - mean) + a * (y[(r + lag) * width + c]! - mean);
      count += 2;
    }
  }
  return sum / count / (std * std);
}
