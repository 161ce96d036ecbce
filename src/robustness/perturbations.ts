// The named perturbations `pocovid robustness` measures. Each turns the stored frames of one
// source (a video's frames in order, or an image) into perturbed frames of the same size, which
// then take the clean frames' path to the network (resize to the model's input, preprocessing from
// its config). The pixel functions live in src/data/perturb.ts; this file names and seeds them.
import sharp from 'sharp';
import { addGreyNoise, applyGain, jpegRoundTrip, shiftImage } from '../data/perturb.js';
import { resizeImage, type ResizeKernel, type RgbImage } from '../media/resize.js';
import { PocovidError, UnknownChoiceError } from '../errors.js';
import { H264_DEFAULTS, h264RoundTrip } from '../media/h264.js';
import { createKeyedRng } from '../util/rng.js';

/** Resize perturbations without a native frame go down to this share of the stored size and back (224 → 168 → 224). */
export const DOWN_UP_FACTOR = 0.75;

/** Where a perturbed frame was made from. */
export type PixelOrigin = 'stored' | 'native';

export interface SourceFrames {
  source: string;
  kind: 'video' | 'image';
  /** Dataset-relative frame paths (keys of the per-frame random streams). */
  paths: readonly string[];
  /** The stored frames, in frame order. */
  stored: readonly RgbImage[];
  /** The native-size frames behind `stored` (same order), or undefined when they cannot be had. */
  native(): Promise<readonly RgbImage[] | undefined>;
}

export interface PerturbContext {
  seed: number;
  /** Frames per second of the dataset's sampling (a video's stored frames are this far apart). */
  fps: number;
}

export interface Perturbed {
  images: RgbImage[];
  origin: PixelOrigin;
}

export interface Perturbation {
  name: string;
  description: string;
  /** Only videos have it (H.264); images are left out of its counts. */
  videosOnly?: boolean;
  apply(frames: SourceFrames, context: PerturbContext): Promise<Perturbed>;
}

const each = (frames: SourceFrames, f: (image: RgbImage, path: string) => RgbImage | Promise<RgbImage>): Promise<Perturbed> =>
  Promise.all(frames.stored.map((image, i) => f(image, frames.paths[i]!))).then((images) => ({ images, origin: 'stored' as const }));

function noise(amplitude: number): Perturbation {
  const name = `noise-${amplitude}`;
  return {
    name,
    description: `±${amplitude} grey level${amplitude > 1 ? 's' : ''} of uniform integer noise per pixel (seeded per frame)`,
    apply: (frames, { seed }) => each(frames, (image, path) => addGreyNoise(image, amplitude, createKeyedRng(seed, `${name}|${path}`))),
  };
}

function jpeg(quality: number): Perturbation {
  return {
    name: `jpeg-${quality}`,
    description: `JPEG re-encoding at quality ${quality} (standard tables, 4:2:0)`,
    apply: (frames) => each(frames, (image) => jpegRoundTrip(image, quality)),
  };
}

/** Resizes a frame to width×height. */
type Resizer = (image: RgbImage, width: number, height: number) => Promise<RgbImage>;

const withKernel = (kernel: ResizeKernel): Resizer => async (image, width, height) => resizeImage(image, width, height, kernel);

/**
 * libvips' Lanczos-3 through sharp: the resize `data build` used before the project's own
 * (src/media/resize.ts, the same kernel computed in TypeScript), hence the resize of datasets
 * built then, and of any pipeline built on sharp.
 */
const libvips: Resizer = async (image, width, height) => {
  const data = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } }).resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
  return { width, height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
};

function resize(name: string, resizer: Resizer, label: string): Perturbation {
  return {
    name,
    description: `${label} resize from the native frame (down ×${DOWN_UP_FACTOR} and up from the stored frame where the native one is missing)`,
    async apply(frames) {
      const native = await frames.native();
      if (native) {
        return { images: await Promise.all(native.map((image, i) => resizer(image, frames.stored[i]!.width, frames.stored[i]!.height))), origin: 'native' };
      }
      const images: RgbImage[] = [];
      for (const image of frames.stored) {
        const down = await resizer(image, Math.max(1, Math.round(image.width * DOWN_UP_FACTOR)), Math.max(1, Math.round(image.height * DOWN_UP_FACTOR)));
        images.push(await resizer(down, image.width, image.height));
      }
      return { images, origin: 'stored' };
    },
  };
}

function gain(percent: number): Perturbation {
  return {
    name: `gain${percent > 0 ? '+' : '-'}${Math.abs(percent)}`,
    description: `gain ×${(1 + percent / 100).toFixed(2)}`,
    apply: (frames) => each(frames, (image) => applyGain(image, 1 + percent / 100)),
  };
}

const h264: Perturbation = {
  name: 'h264',
  description: `a video's stored frames re-encoded as one H.264 clip at the dataset's frame rate (${H264_DEFAULTS.codec} CRF ${H264_DEFAULTS.crf}, ${H264_DEFAULTS.pixelFormat}); videos only`,
  videosOnly: true,
  async apply(frames, { fps }) {
    const decoded = await h264RoundTrip(frames.stored, fps);
    return { images: decoded.map((rgb, i) => ({ width: frames.stored[i]!.width, height: frames.stored[i]!.height, rgb })), origin: 'stored' };
  },
};

/** Every perturbation, in report order. */
export const PERTURBATIONS: readonly Perturbation[] = [
  noise(1),
  noise(2),
  jpeg(95),
  jpeg(75),
  resize('resize-bilinear', withKernel('bilinear'), 'bilinear (OpenCV INTER_LINEAR)'),
  resize('resize-area', withKernel('area'), 'area-average (OpenCV INTER_AREA)'),
  resize('resize-libvips', libvips, "libvips' Lanczos-3 (sharp; data build's resize before the project's own)"),
  {
    name: 'shift-1',
    description: 'content moved one pixel right (first column repeated)',
    apply: (frames) => each(frames, (image) => shiftImage(image, 1, 0)),
  },
  gain(5),
  gain(-5),
  h264,
];

export const PERTURBATION_NAMES: readonly string[] = PERTURBATIONS.map((p) => p.name);

/** The perturbations named in `names` (comma-separated strings allowed), in report order; all when undefined. */
export function selectPerturbations(names?: readonly string[]): Perturbation[] {
  if (names === undefined) return [...PERTURBATIONS];
  const wanted = names.flatMap((n) => n.split(',')).map((n) => n.trim()).filter(Boolean);
  if (wanted.length === 0) throw new PocovidError(`no perturbation given; valid: ${PERTURBATION_NAMES.join(', ')}`);
  for (const name of wanted) if (!PERTURBATION_NAMES.includes(name)) throw new UnknownChoiceError('perturbation', name, PERTURBATION_NAMES);
  return PERTURBATIONS.filter((p) => wanted.includes(p.name));
}
