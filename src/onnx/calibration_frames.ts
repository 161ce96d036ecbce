// Where int8 calibration frames come from: a dataset folder (`pocovid data build`: its frames are
// already at the model's input size), or any folder of images and videos, decoded and sampled
// exactly as `predict` decodes them, so that the ranges are those the model will meet.
import { existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { openDataset } from '../data/dataset.js';
import { readImageAsInput } from '../data/image.js';
import { BadInputError } from '../errors.js';
import { decodeImageTo, decodeVideoTo } from '../infer/media.js';
import { collectInputs } from '../infer/predict_files.js';
import { sniffFile } from '../media/sniff.js';
import { clipInputs } from '../models/preprocess.js';
import type { PretrainedCfg } from '../models/types.js';

export interface FrameSource {
  kind: 'dataset' | 'folder';
  /** The folder given. */
  dir: string;
  /** Files, relative to dir, in a fixed order (the caller shuffles). */
  items: string[];
  /** The network inputs of one item: one for an image, the sampled frames of a video. */
  read(item: string): Promise<Float32Array[]>;
}

/**
 * Checks that `dir` can give frames, and lists them: a dataset's frame paths, or a plain folder's
 * images and videos (relative to dir). The CLI calls it before writing anything.
 */
export function listFrameFiles(dir: string): { kind: FrameSource['kind']; items: string[] } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new BadInputError(dir, 'not a folder: give a dataset folder (pocovid data build) or a folder of images and videos');
  if (existsSync(join(dir, 'dataset.json'))) return { kind: 'dataset', items: openDataset(dir).rows.map((row) => row.path) };
  const items = collectInputs([dir]).map((file) => relative(dir, file));
  if (items.length === 0) throw new BadInputError(dir, 'has no images or videos (and no dataset.json)');
  return { kind: 'folder', items };
}

/** A dataset folder (has dataset.json) or a folder of images and videos. */
export function openFrameSource(dir: string, cfg: PretrainedCfg): FrameSource {
  const { kind, items } = listFrameFiles(dir);
  // A dataset's frames were written at the model's input size by `data build`.
  if (kind === 'dataset') return { kind, dir, items, read: async (item) => [await readImageAsInput(join(dir, item), cfg)] };
  const [height, width] = cfg.inputSize;
  return {
    kind,
    dir,
    items,
    async read(item) {
      const file = join(dir, item);
      // Typed from the bytes, as predict types them.
      const type = await sniffFile(file);
      if (type.kind === 'image') return [...clipInputs([await decodeImageTo(file, width, height, type)], cfg)];
      // decodeVideoTo's default sampling is predict's (3 frames per second, at most 30).
      const frames = await decodeVideoTo(file, width, height, {}, type);
      return clipInputs(frames, cfg);
    },
  };
}
