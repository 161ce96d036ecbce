// What the trainer needs from a dataset folder: the fold's rows split into train / validation /
// test, labels as class indices, and preprocessed (optionally augmented) network inputs.
import { join } from 'node:path';
import type { ManifestRow } from '../data/types.js';
import { InputCache, openDataset, splitForFold } from '../data/dataset.js';
import { pocovidAugmenter, ultrasoundAugmenter, type Augmenter } from '../data/augment.js';
import { pipelineView } from '../data/pipeline_augment.js';
import { decodeImage } from '../data/image.js';
import type { RgbImage } from '../media/resize.js';
import { applySector, type SectorGeometry } from '../data/sector.js';
import { datasetSectors } from '../data/sectors_file.js';
import { pixelsToInput } from '../models/preprocess.js';
import type { PretrainedCfg } from '../models/types.js';
import type { Rng } from '../util/rng.js';
import { PocovidError } from '../errors.js';
import type { TrainConfig } from './config.js';

export interface FrameInputs {
  rows: ManifestRow[];
  count: number;
  labels: number[];
  /** The preprocessed input of frame i; augmented with `rng` when one is given. */
  input(index: number, rng?: Rng): Promise<Float32Array>;
}

export interface FoldData {
  classes: string[];
  train: FrameInputs;
  validation: FrameInputs;
  test: FrameInputs;
  validationPatients: string[];
}

export function countFolds(dataDir: string): number {
  return openDataset(dataDir).info.folds;
}

/**
 * A frame as the network sees it: decoded at the input size, changed by `change` (a 'pipeline'
 * view), the source's sector applied (with cfg.sector), preprocessed.
 */
async function frameInput(path: string, cfg: PretrainedCfg, sector: SectorGeometry | undefined, change?: (image: RgbImage) => Promise<RgbImage>): Promise<Float32Array> {
  const decoded = await decodeImage(path, cfg.inputSize);
  const image = change ? await change(decoded) : decoded;
  return pixelsToInput((sector ? applySector(image, sector, cfg.sector!) : image).rgb, cfg);
}

/**
 * How a training view is made. 'input': the augmenter transforms the preprocessed input (the
 * geometric and intensity augmentations). 'pixels': the 'pipeline' augmentation changes the
 * decoded 8-bit frame, before the sector and the preprocessing, as another pipeline would.
 */
type ViewMaker = { kind: 'input'; augmenter: Augmenter } | { kind: 'pixels' };

/** Decoded inputs are kept in memory: a POCUS dataset is a few thousand frames (~0.6 MB each at 224²). */
function frameInputs(
  dir: string,
  rows: ManifestRow[],
  classes: string[],
  cfg: PretrainedCfg,
  views: ViewMaker,
  decoded: InputCache,
  sectors: ReadonlyMap<string, SectorGeometry> | undefined,
): FrameInputs {
  const shape = [cfg.inputSize[0], cfg.inputSize[1], cfg.channels] as const;
  return {
    rows,
    count: rows.length,
    labels: rows.map((r) => classes.indexOf(r.label)),
    async input(index, rng) {
      const row = rows[index]!;
      const sector = sectors?.get(row.source);
      if (sectors && !sector) throw new PocovidError(`${dir}: ${row.source} has no fitted sector in the dataset's sectors`);
      if (rng && views.kind === 'pixels') {
        // A view of its own pixels: decoded again (the cache holds preprocessed clean inputs only).
        return frameInput(join(dir, row.path), cfg, sector, async (image) => (await pipelineView(image, rng)).image);
      }
      let value = decoded.get(row.path);
      if (!value) {
        value = await frameInput(join(dir, row.path), cfg, sector);
        decoded.set(row.path, value);
      }
      return rng && views.kind === 'input' ? views.augmenter.apply(value, shape, rng) : value;
    },
  };
}

/** The classes a run trains on, in output order: --classes, else the dataset's without viral. */
export function trainingClasses(config: Pick<TrainConfig, 'data' | 'classes'>): string[] {
  const { info } = openDataset(config.data);
  const classes: string[] = config.classes ?? info.classes.filter((c) => c !== 'viral');
  const unknown = classes.filter((c) => !info.classes.includes(c as never));
  if (unknown.length) {
    throw new PocovidError(`${config.data}: classes ${unknown.join(', ')} are not in the dataset (it has ${info.classes.join(', ')})`);
  }
  return classes;
}

/** The augmentation a run's config names: on the network input (in the space of `cfg`), or on the 8-bit pixels ('pipeline'). */
function viewMakerFor(config: Pick<TrainConfig, 'augmentation'>, cfg: PretrainedCfg): ViewMaker {
  if (config.augmentation === 'pipeline') return { kind: 'pixels' };
  return { kind: 'input', augmenter: config.augmentation === 'ultrasound' ? ultrasoundAugmenter(cfg) : pocovidAugmenter() };
}

/** The fold's frames split into train / validation / test, preprocessed as `cfg` says (the built model's). */
export async function loadTrainingData(config: TrainConfig, cfg: PretrainedCfg): Promise<FoldData> {
  const { rows, info } = openDataset(config.data);
  const classes = trainingClasses(config);
  if (!config.refit && config.fold >= info.folds) {
    throw new PocovidError(`${config.data}: fold ${config.fold} does not exist; the dataset has folds 0..${info.folds - 1}`);
  }
  const kept = rows.filter((r) => classes.includes(r.label));
  // A refit learns from every frame: nothing is held out.
  const split = config.refit ? { train: kept, validation: [], test: [] } : splitForFold(kept, config.fold, { validationFraction: config.validationFraction, seed: config.seed });
  for (const [name, part] of Object.entries({ train: split.train, validation: split.validation, test: split.test })) {
    if (part.length === 0 && (name === 'train' || !config.refit)) throw new PocovidError(`${config.data}: fold ${config.fold} leaves the ${name} split empty`);
  }
  // Augmentation is applied only where the caller passes an rng (training views).
  const views = viewMakerFor(config, cfg);
  const decoded = new InputCache(8 * 1024 ** 3);
  const sectors = cfg.sector ? await datasetSectors(config.data, kept) : undefined;
  const make = (part: ManifestRow[]) => frameInputs(config.data, part, classes, cfg, views, decoded, sectors);
  return {
    classes,
    train: make(split.train),
    validation: make(split.validation),
    test: make(split.test),
    validationPatients: [...new Set(split.validation.map((r) => r.patient))],
  };
}
