// Augmentation as the original Keras ImageDataGenerator(rotation_range=10, width_shift_range=0.1,
// height_shift_range=0.1, horizontal_flip=True, vertical_flip=True, fill_mode='nearest'):
// small transforms that each draw their parameters from an injected Rng and contribute an affine
// map; the composed map is inverted once and the image is resampled once (bilinear, edges
// extended = 'nearest' fill). Pure TypeScript on HWC Float32Arrays.
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

/** A list of transforms applied in order, resampled once. */
export class Augmenter {
  constructor(readonly transforms: readonly Transform[]) {}

  /** The composed source → output map for one draw. */
  sample(rng: Rng, height: number, width: number): Affine {
    let m = IDENTITY;
    for (const t of this.transforms) m = compose(t.sample(rng, height, width), m);
    return m;
  }

  /** A randomly transformed copy of an H×W×C image. */
  apply(image: Float32Array, shape: readonly [number, number, number], rng: Rng): Float32Array {
    const [h, w, c] = shape;
    return resampleAffine(image, h, w, c, this.sample(rng, h, w));
  }

  describe(): string {
    return this.transforms.map((t) => t.name).join(' → ') || 'none';
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
