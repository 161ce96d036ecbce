// The frames a dataset was made from, at their native size: the folder `data build` read (named
// in dataset.json), decoded with the same crop and sampling, so that a resize perturbation starts
// where the dataset's own resize started. A re-decoded frame is used only if data build's resize
// of it gives back the stored frame; otherwise (folder gone, file changed, other crop) the caller
// falls back to the stored frame and says so.
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { loadCropFile, type CropSpec } from '../data/crop.js';
import type { Dataset } from '../data/dataset.js';
import { decodeImage } from '../data/image.js';
import { type RgbImage } from '../media/resize.js';
import { resizeRgb } from '../media/resize.js';
import { meanAbsoluteDifference } from '../data/perturb.js';
import { BadInputError } from '../errors.js';
import { decodeVideoFrames } from '../media/video.js';

/**
 * Largest mean difference (grey levels) between data build's step redone on the source and the
 * stored frame for the two to count as the same picture. The same tools give 0; another ffmpeg or
 * libvips build may round a little differently; another file or crop gives several grey levels.
 */
export const NATIVE_MATCH_TOLERANCE = 0.5;

export interface NativeSources {
  /** The folder data build read, when found. */
  dir: string | undefined;
  /** Why no native frame can be had (when dir is undefined). */
  unavailable?: string;
  crops: Map<string, CropSpec>;
  /** The build's sampling, to pick the same native frames. */
  fps: number;
  maxFrames: number;
}

const isSourceFolder = (dir: string): boolean =>
  existsSync(dir) && statSync(dir).isDirectory() && (existsSync(join(dir, 'pocus_videos')) || existsSync(join(dir, 'pocus_images')));

/** The working folder, then the dataset folder and each folder above it: where a relative path given to data build may have started. */
function bases(datasetDir: string): string[] {
  const out = [process.cwd()];
  for (let dir = resolve(datasetDir); ; dir = dirname(dir)) {
    out.push(dir);
    if (dirname(dir) === dir) break;
  }
  return out;
}

/**
 * Finds the source folder of `dataset` (or takes `override`, which must be one) and its crops.
 * Never throws for a missing folder found through dataset.json: native frames are then unavailable.
 */
export function locateNativeSources(dataset: Dataset, override?: string): NativeSources {
  const options = dataset.info.options as { source?: unknown; crop?: unknown; fps?: unknown; maxFrames?: unknown };
  const fps = typeof options.fps === 'number' && options.fps > 0 ? options.fps : 3;
  const maxFrames = typeof options.maxFrames === 'number' && options.maxFrames >= 1 ? options.maxFrames : 30;
  const none = (unavailable: string): NativeSources => ({ dir: undefined, unavailable, crops: new Map(), fps, maxFrames });
  const named = typeof options.source === 'string' && options.source !== '' ? options.source : undefined;
  let dir: string | undefined;
  if (override !== undefined) {
    if (!isSourceFolder(override)) throw new BadInputError(override, 'not a POCUS source folder (no pocus_videos/ or pocus_images/)');
    dir = resolve(override);
  } else {
    if (!named) return none(`${join(dataset.dir, 'dataset.json')} names no source folder`);
    const candidates = isAbsolute(named) ? [named] : bases(dataset.dir).map((base) => resolve(base, named));
    dir = candidates.find(isSourceFolder);
    if (!dir) return none(`source folder "${named}" (dataset.json) not found; pass --source <dir>`);
  }
  const crop = typeof options.crop === 'string' && options.crop !== '' ? options.crop : undefined;
  if (!crop) return { dir, crops: new Map(), fps, maxFrames };
  // crop.json usually lies inside the source folder: look there first, wherever that folder now is.
  const inside = named && !relative(named, crop).startsWith('..') ? join(dir, relative(named, crop)) : undefined;
  const candidates = [inside, ...(isAbsolute(crop) ? [crop] : bases(dataset.dir).map((base) => resolve(base, crop)))].filter((c): c is string => !!c);
  const cropFile = candidates.find((c) => existsSync(c));
  if (!cropFile) return none(`crop file "${crop}" (dataset.json) not found, so native frames cannot be cropped as the dataset was`);
  return { dir, crops: loadCropFile(cropFile), fps, maxFrames };
}

export interface NativeFrames {
  /** One native-size (cropped) frame per requested frame, in the same order. */
  images: RgbImage[];
  /** Largest mean difference between data build's step redone on the source and the stored frame. */
  worstMismatch: number;
}

/**
 * The native frames behind `stored` (frames `frameNumbers` of `source`, as in the manifest), or the
 * reason they cannot be used. Errors of the file itself become a reason, not an exception.
 */
export async function decodeNativeFrames(
  native: NativeSources,
  source: string,
  kind: 'video' | 'image',
  frameNumbers: readonly number[],
  stored: readonly RgbImage[],
): Promise<NativeFrames | { reason: string }> {
  if (!native.dir) return { reason: native.unavailable ?? 'no source folder' };
  const file = join(native.dir, source);
  if (!existsSync(file)) return { reason: `${source} not found under ${native.dir}` };
  const crop = native.crops.get(source);
  let images: RgbImage[];
  try {
    if (kind === 'image') {
      images = [await decodeImage(file, undefined, crop)];
    } else {
      const { frames } = await decodeVideoFrames(file, { fps: native.fps, maxFrames: native.maxFrames, crop });
      const bySourceFrame = new Map(frames.map((f) => [f.sourceFrame, f]));
      images = [];
      for (const n of frameNumbers) {
        const frame = bySourceFrame.get(n);
        if (!frame) return { reason: `${source}: native frame ${n} is not among the frames decoded again` };
        images.push({ width: frame.width, height: frame.height, rgb: frame.rgb });
      }
    }
  } catch (err) {
    return { reason: (err as Error).message };
  }
  if (images.length !== stored.length) return { reason: `${source}: ${images.length} native frames for ${stored.length} stored ones` };
  // data build's own step from the file to the stored frame, redone: the one resize
  // (src/media/resize.ts) of each decoded frame, or of the decoded image.
  let worstMismatch = 0;
  for (const [i, image] of images.entries()) {
    const target = stored[i]!;
    const size: [number, number] = [target.height, target.width];
    const rebuilt = kind === 'image' ? await decodeImage(file, size, crop) : { width: target.width, height: target.height, rgb: resizeRgb(image.rgb, image.width, image.height, target.width, target.height) };
    worstMismatch = Math.max(worstMismatch, meanAbsoluteDifference(rebuilt, target));
  }
  if (worstMismatch > NATIVE_MATCH_TOLERANCE) {
    return { reason: `${source}: re-decoded frames differ from the stored ones by up to ${worstMismatch.toFixed(2)} grey levels on average (another file or crop?)` };
  }
  return { images, worstMismatch };
}
