// Augmentation. The original, as Keras' ImageDataGenerator(rotation_range=10, width_shift_range=0.1,
// height_shift_range=0.1, horizontal_flip=True, vertical_flip=True, fill_mode='nearest'):
// small transforms that each draw their parameters from an injected Rng and contribute an affine
// map; the composed map is inverted once and the image is resampled once (bilinear, edges
// extended = 'nearest' fill). The ultrasound augmentation adds intensity changes on the picture's
// [0, 1] values after the resampling. Pure TypeScript on HWC Float32Arrays.
import type { Rng } from '../util/rng.js';

/**
 * Affine map on pixel-centre coordinates (x = column, y = row, y down):
 * x' = a·x + b·y + c,  y' = d·x + e·y + f.  It maps a SOURCE position to its OUTPUT position.
 */
export type Affine = readonly [number, number, number, number, number, number];

export const IDENTITY: Affine = [1, 0, 0, 0, 1, 0];

/** then ∘ first: apply `first`, then `then`. */
export function compose(then: Affine, first: Affine): Affine {
  const [a2, b2, c2, d2, e2, f2] = then;
  const [a1, b1, c1, d1, e1, f1] = first;
  return [a2 * a1 + b2 * d1, a2 * b1 + b2 * e1, a2 * c1 + b2 * f1 + c2, d2 * a1 + e2 * d1, d2 * b1 + e2 * e1, d2 * c1 + e2 * f1 + f2];
}

export function invert(m: Affine): Affine {
  const [a, b, c, d, e, f] = m;
  const det = a * e - b * d;
  if (Math.abs(det) < 1e-12) throw new Error('affine map is not invertible');
  const ia = e / det;
  const ib = -b / det;
  const id = -d / det;
  const ie = a / det;
  return [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)];
}

/** Rotation by `degrees` about the image centre, counter-clockwise as displayed. */
export function rotationAffine(degrees: number, height: number, width: number): Affine {
  const t = (degrees * Math.PI) / 180;
  const cos = Math.cos(t);
  const sin = Math.sin(t);
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  // y points down, so counter-clockwise on screen is x' = cx + cos·dx + sin·dy, y' = cy − sin·dx + cos·dy.
  return [cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy];
}

/** Content moves right by dx and down by dy pixels. */
export function shiftAffine(dx: number, dy: number): Affine {
  return [1, 0, dx, 0, 1, dy];
}

export function flipAffine(horizontal: boolean, vertical: boolean, height: number, width: number): Affine {
  return [horizontal ? -1 : 1, 0, horizontal ? width - 1 : 0, 0, vertical ? -1 : 1, vertical ? height - 1 : 0];
}

/** A random geometric transform: draws its parameters from rng and returns its affine map. */
export interface Transform {
  readonly name: string;
  sample(rng: Rng, height: number, width: number): Affine;
}

/** Uniform rotation in [−maxDegrees, maxDegrees]. */
export function randomRotation(maxDegrees: number): Transform {
  return { name: `rotation(±${maxDegrees}°)`, sample: (rng, h, w) => rotationAffine(rng.uniform(-maxDegrees, maxDegrees), h, w) };
}

/** Uniform shifts in [−fraction, fraction] of the width (x) and height (y), as Keras' *_shift_range. */
export function randomShift(widthFraction: number, heightFraction: number): Transform {
  return {
    name: `shift(±${widthFraction}w, ±${heightFraction}h)`,
    sample: (rng, h, w) => shiftAffine(rng.uniform(-widthFraction, widthFraction) * w, rng.uniform(-heightFraction, heightFraction) * h),
  };
}

/** Each enabled flip with probability 1/2. */
export function randomFlip(horizontal: boolean, vertical: boolean): Transform {
  return {
    name: `flip(${horizontal ? 'h' : ''}${vertical ? 'v' : ''})`,
    sample: (rng, h, w) => flipAffine(horizontal && rng.next() < 0.5, vertical && rng.next() < 0.5, h, w),
  };
}

/**
 * Resamples an H×W×C image under `forward` (source → output): each output pixel reads the
 * inverse-mapped source position bilinearly; positions outside take the nearest edge pixel.
 */
export function resampleAffine(image: Float32Array, height: number, width: number, channels: number, forward: Affine, out?: Float32Array): Float32Array {
  if (image.length !== height * width * channels) {
    throw new Error(`image has ${image.length} values, expected ${height}x${width}x${channels}`);
  }
  const result = out ?? new Float32Array(image.length);
  const [a, b, c, d, e, f] = invert(forward);
  const maxX = width - 1;
  const maxY = height - 1;
  for (let y = 0; y < height; y++) {
    let sx = b * y + c;
    let sy = e * y + f;
    for (let x = 0; x < width; x++, sx += a, sy += d) {
      const px = sx < 0 ? 0 : sx > maxX ? maxX : sx;
      const py = sy < 0 ? 0 : sy > maxY ? maxY : sy;
      let x0 = Math.floor(px);
      let y0 = Math.floor(py);
      let fx = px - x0;
      let fy = py - y0;
      // Snap near-integers so that exact maps (flips, 90° turns, integer shifts) copy pixels exactly.
      if (fx < 1e-6) fx = 0;
      else if (fx > 1 - 1e-6) (x0 += 1), (fx = 0);
      if (fy < 1e-6) fy = 0;
      else if (fy > 1 - 1e-6) (y0 += 1), (fy = 0);
      const x1 = x0 < maxX ? x0 + 1 : maxX;
      const y1 = y0 < maxY ? y0 + 1 : maxY;
      const o = (y * width + x) * channels;
      const i00 = (y0 * width + x0) * channels;
      const i01 = (y0 * width + x1) * channels;
      const i10 = (y1 * width + x0) * channels;
      const i11 = (y1 * width + x1) * channels;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      for (let ch = 0; ch < channels; ch++) {
        result[o + ch] = w00 * image[i00 + ch]! + w01 * image[i01 + ch]! + w10 * image[i10 + ch]! + w11 * image[i11 + ch]!;
      }
    }
  }
  return result;
}

/**
 * Depth zoom: a scan at a shallower depth setting shows the top (1 − d) of the picture enlarged.
 * Anchored at the top centre (where the probe is), d uniform in [0, maxFraction].
 */
export function randomDepthZoom(maxFraction: number): Transform {
  return {
    name: `depth zoom(≤${maxFraction})`,
    sample: (rng, _h, w) => {
      const s = 1 / (1 - rng.uniform(0, maxFraction));
      const cx = (w - 1) / 2;
      return [s, 0, cx - s * cx, 0, s, 0];
    },
  };
}

/** A random change of pixel intensities, in place, on values in [0, 1] (H×W×C, all channels alike). */
export interface IntensityTransform {
  readonly name: string;
  apply(unit: Float32Array, channels: number, rng: Rng): void;
}

/** Log-uniform factor in [1/max, max]. */
function logUniform(rng: Rng, max: number): number {
  return Math.exp(rng.uniform(-Math.log(max), Math.log(max)));
}

/** Overall gain (the scanner's gain knob): v · g, g log-uniform in [1/max, max]. */
export function randomGain(max: number): IntensityTransform {
  return {
    name: `gain(×${max}±)`,
    apply(unit, _channels, rng) {
      const g = logUniform(rng, max);
      for (let i = 0; i < unit.length; i++) unit[i]! *= g;
    },
  };
}

/** Contrast as a gamma curve (dynamic-range presets): v^γ, γ log-uniform in [1/max, max]. */
export function randomGamma(max: number): IntensityTransform {
  return {
    name: `gamma(${max}±)`,
    apply(unit, _channels, rng) {
      const gamma = logUniform(rng, max);
      for (let i = 0; i < unit.length; i++) unit[i] = Math.pow(Math.max(unit[i]!, 0), gamma);
    },
  };
}

/** Multiplicative speckle: each pixel × (1 + σ·n), n standard normal, the same for its channels. */
export function randomSpeckle(sigma: number): IntensityTransform {
  return {
    name: `speckle(σ ${sigma})`,
    apply(unit, channels, rng) {
      for (let p = 0; p < unit.length; p += channels) {
        const f = Math.max(0, 1 + sigma * rng.normal());
        for (let c = 0; c < channels; c++) unit[p + c]! *= f;
      }
    },
  };
}

/** Additive noise of up to ±levels grey levels (of 255) per pixel: what another codec or resize adds. */
export function randomGreyNoise(levels: number): IntensityTransform {
  return {
    name: `noise(±${levels}/255)`,
    apply(unit, channels, rng) {
      for (let p = 0; p < unit.length; p += channels) {
        const d = rng.uniform(-levels, levels) / 255;
        for (let c = 0; c < channels; c++) unit[p + c]! += d;
      }
    },
  };
}

/** How network inputs map to intensities in [0, 1]: x = (v − mean[c]) / std[c] (a model's preprocessing). */
export interface InputScaling {
  mean: readonly number[];
  std: readonly number[];
}

/**
 * Geometric transforms applied in order and resampled once, then intensity transforms (if any) on
 * the picture's [0, 1] values, clipped to [0, 1].
 */
export class Augmenter {
  constructor(
    readonly transforms: readonly Transform[],
    readonly intensity: readonly IntensityTransform[] = [],
    readonly scaling?: InputScaling,
  ) {
    if (intensity.length && !scaling) throw new Error('intensity transforms need the input scaling');
  }

  /** The composed source → output map for one draw. */
  sample(rng: Rng, height: number, width: number): Affine {
    let m = IDENTITY;
    for (const t of this.transforms) m = compose(t.sample(rng, height, width), m);
    return m;
  }

  /** A randomly transformed copy of an H×W×C image. */
  apply(image: Float32Array, shape: readonly [number, number, number], rng: Rng): Float32Array {
    const [h, w, c] = shape;
    const out = resampleAffine(image, h, w, c, this.sample(rng, h, w));
    if (!this.intensity.length) return out;
    const { mean, std } = this.scaling!;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! * std[i % c]! + mean[i % c]!;
    for (const t of this.intensity) t.apply(out, c, rng);
    for (let i = 0; i < out.length; i++) out[i] = (Math.min(Math.max(out[i]!, 0), 1) - mean[i % c]!) / std[i % c]!;
    return out;
  }

  describe(): string {
    return [...this.transforms, ...this.intensity].map((t) => t.name).join(' → ') || 'none';
  }
}

export interface AugmentOptions {
  /** Degrees; 0 disables (default 10). */
  rotation?: number;
  /** Fraction of the width (default 0.1). */
  widthShift?: number;
  /** Fraction of the height (default 0.1). */
  heightShift?: number;
  horizontalFlip?: boolean;
  verticalFlip?: boolean;
}

/** The original POCOVID-Net augmentation; every part configurable. */
export function pocovidAugmenter(options: AugmentOptions = {}): Augmenter {
  const rotation = options.rotation ?? 10;
  const widthShift = options.widthShift ?? 0.1;
  const heightShift = options.heightShift ?? 0.1;
  const horizontal = options.horizontalFlip ?? true;
  const vertical = options.verticalFlip ?? true;
  const transforms: Transform[] = [];
  if (rotation > 0) transforms.push(randomRotation(rotation));
  if (widthShift > 0 || heightShift > 0) transforms.push(randomShift(widthShift, heightShift));
  if (horizontal || vertical) transforms.push(randomFlip(horizontal, vertical));
  return new Augmenter(transforms);
}

/**
 * Augmentation for lung ultrasound: only what a real scan can look like. No vertical flip (the
 * probe and the pleura are always at the top); small rotations and shifts (probe angle and
 * position); horizontal flip (left and right of the sector are interchangeable); depth zoom;
 * gain and contrast (scanner presets); speckle; and ±2 grey levels of noise so that a decision
 * does not hang on a codec's or a resize's rounding.
 */
export function ultrasoundAugmenter(scaling: InputScaling): Augmenter {
  return new Augmenter(
    [randomRotation(5), randomShift(0.05, 0.05), randomDepthZoom(0.15), randomFlip(true, false)],
    [randomGain(1.25), randomGamma(1.25), randomSpeckle(0.08), randomGreyNoise(2)],
    scaling,
  );
}
