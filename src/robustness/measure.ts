// `pocovid robustness`, the measuring part: every test frame of every fold goes through that
// fold's own model (the one trained without it, as its predictions.csv records) clean and under
// each perturbation. Frames are decoded once per source; perturbed frames take the clean frames'
// path to the network (resize to the model's input as the trainer does, preprocessing from the
// model's config) on the forward runner of the run's choice (ONNX Runtime where it loads).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openDataset, type Dataset } from '../data/dataset.js';
import { decodeImage } from '../data/image.js';
import { type RgbImage } from '../media/resize.js';
import { resizeRgb } from '../media/resize.js';
import { meanAbsoluteDifference } from '../data/perturb.js';
import { createProgress } from '../data/progress.js';
import type { ManifestRow } from '../data/types.js';
import type { ConformalCalibration } from '../eval/conformal.js';
import { readPredictionsCsv } from '../eval/csv.js';
import type { PredictionRow, VideoAggregation } from '../eval/types.js';
import { initEngine } from '../engine/index.js';
import { BadInputError, PocovidError } from '../errors.js';
import { runDataset } from '../explain/run_data.js';
import { argMax } from '../decision/combine.js';
import { loadModelDir } from '../model_dir/model_dir.js';
import { MODEL_META_FILE } from '../model_dir/meta.js';
import { runFoldDirs } from '../model_dir/run.js';
import { clipInputs } from '../models/preprocess.js';
import type { PretrainedCfg } from '../models/types.js';
import { createForwardRunner, type ForwardRunner, type Runtime, type RuntimeChoice } from '../onnx/runtime.js';
import { decodeNativeFrames, locateNativeSources, type NativeSources } from './native.js';
import { selectPerturbations, type Perturbation, type SourceFrames } from './perturbations.js';
import type { FrameRecord } from './stats.js';
import { readJsonFile } from '../util/json_file.js';

export interface RobustnessOptions {
  /** A cross-validation run (fold-<k>/model + fold-<k>/predictions.csv) or a single-fold training run. */
  run: string;
  /** The dataset the run was trained on; default: the one its config.json names. */
  data?: string;
  /** Default: every fold of the run. */
  folds?: number[];
  /** Perturbation names; default: all. */
  perturbations?: string[];
  /** Seed of the random perturbations (noise). */
  seed?: number;
  runtime?: RuntimeChoice;
  videoAggregation?: VideoAggregation;
  /** The folder `data build` read (native frames for the resize perturbations); default: found from dataset.json. */
  source?: string;
  /** Frames per forward pass. */
  batchSize?: number;
  /**
   * Score every frame (clean and perturbed) by the mean of its own and its mirror image's
   * probabilities: what test-time averaging over a horizontal flip would do to stability. The
   * run's predictions.csv was made without it, so the clean check then reports a difference.
   */
  mirrorAverage?: boolean;
  quiet?: boolean;
  /** One-line notices (runtime fallback); default stderr. */
  notice?: (line: string) => void;
}

export interface FoldUnit {
  fold: number;
  modelDir: string;
  predictions: string;
}

export interface SkippedSource {
  source: string;
  /** Absent when the whole source was left out (its frames could not be read). */
  perturbation?: string;
  reason: string;
}

export interface RobustnessMeasurement {
  run: string;
  data: string;
  classes: string[];
  seed: number;
  videoAggregation: VideoAggregation;
  batchSize: number;
  mirrorAverage: boolean;
  perturbations: Perturbation[];
  /** Each fold's model, runtime and frames, and its prediction-set calibration when it has one. */
  folds: { fold: number; runtime: Runtime; frames: number; model: string; conformal?: ConformalCalibration }[];
  /**
   * The native source frames behind the resize perturbations: the folder, why there is none, the
   * build's sampling, the largest mean difference (grey levels) between data build's resize of a
   * re-decoded frame and the stored frame, and the sources that fell back to the stored frame.
   */
  native: {
    dir: string | null;
    unavailable: string | null;
    fps: number;
    maxFrames: number;
    worstMismatch: number;
    fallbacks: { source: string; reason: string }[];
  };
  /** Source-level failures; the rest of the work went on. */
  skipped: SkippedSource[];
  records: FrameRecord[];
  /** Clean probabilities computed here against the run's predictions.csv: the same frames, the same preprocessing? */
  cleanCheck: { frames: number; maxAbsDifference: number; labelAgreement: number };
}

/** The folds of `run` that hold a model and its test predictions. */
export function runFoldUnits(run: string): FoldUnit[] {
  const folds = runFoldDirs(run).map(({ fold, dir }) => ({ fold, modelDir: dir, predictions: join(run, `fold-${fold}`, 'predictions.csv') }));
  if (folds.length > 0) return folds;
  // A single-fold `pocovid train` run: <run>/model, <run>/predictions.csv, its fold in config.json.
  if (existsSync(join(run, 'model', MODEL_META_FILE))) {
    const configFile = join(run, 'config.json');
    // A damaged config.json is named as such (readJsonFile), not taken for one without a fold.
    const fold = existsSync(configFile) ? readJsonFile<{ fold?: unknown } | null>(configFile, { what: "the run's configuration" })?.fold : undefined;
    if (typeof fold !== 'number') throw new BadInputError(join(run, 'config.json'), 'missing or names no "fold": cannot tell which frames the model was tested on');
    return [{ fold, modelDir: join(run, 'model'), predictions: join(run, 'predictions.csv') }];
  }
  throw new BadInputError(run, 'not a training run (no fold-<k>/model/pocovid.json or model/pocovid.json)');
}

function resolveDataset(run: string, data: string | undefined): string {
  if (data !== undefined) return data;
  if (!existsSync(join(run, 'config.json'))) throw new BadInputError(run, 'has no config.json naming its dataset; pass --data <dataset>');
  return runDataset(run, undefined);
}

/**
 * A clip's frames (one source's test frames, clean or perturbed) → network inputs as predict makes
 * them: resized to the model's input by the one resize when the sizes differ, then clipInputs (with
 * cfg.sector, the sector fitted on this clip, as predict fits it on the file it is given).
 */
export function clipToInputs(images: readonly RgbImage[], cfg: PretrainedCfg): Float32Array[] {
  const [h, w] = cfg.inputSize;
  const frames = images.map((image) => (image.width === w && image.height === h ? image : { width: w, height: h, rgb: resizeRgb(image.rgb, image.width, image.height, w, h) }));
  return clipInputs(frames, cfg);
}

/** A network input (h × w × c, channels last) mirrored left to right. */
export function mirrorInput(input: Float32Array, [height, width]: readonly [number, number], channels: number): Float32Array {
  const out = new Float32Array(input.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + (width - 1 - x)) * channels;
      out.set(input.subarray(from, from + channels), (y * width + x) * channels);
    }
  }
  return out;
}

async function classify(runner: ForwardRunner, inputs: Float32Array[], classes: number, batchSize: number, mirror?: { cfg: PretrainedCfg }): Promise<number[][]> {
  const size = inputs[0]?.length ?? 0;
  const out: number[][] = [];
  const forward = async (chunk: Float32Array[]): Promise<Float32Array> => {
    const batch = new Float32Array(chunk.length * size);
    chunk.forEach((input, i) => batch.set(input, i * size));
    return (await runner.run(batch, chunk.length))[0]!;
  };
  for (let start = 0; start < inputs.length; start += batchSize) {
    const chunk = inputs.slice(start, start + batchSize);
    const probs = await forward(chunk);
    const mirrored = mirror ? await forward(chunk.map((input) => mirrorInput(input, mirror.cfg.inputSize, mirror.cfg.channels))) : undefined;
    for (let i = 0; i < chunk.length; i++) {
      out.push(Array.from(probs.subarray(i * classes, (i + 1) * classes), (p, c) => (mirrored ? (p + mirrored[i * classes + c]!) / 2 : p)));
    }
  }
  return out;
}

interface SourceGroup {
  source: string;
  kind: 'video' | 'image';
  rows: { manifest: ManifestRow; prediction: PredictionRow }[];
}

/** A fold's test frames from its predictions.csv, each found in the dataset's manifest, grouped by source in frame order. */
function testSources(unit: FoldUnit, dataset: Dataset): { groups: SourceGroup[]; classes: string[] } {
  const table = readPredictionsCsv(unit.predictions);
  const byPath = new Map(dataset.rows.map((r) => [r.path, r]));
  const groups = new Map<string, SourceGroup>();
  for (const prediction of table.rows) {
    const manifest = byPath.get(prediction.path);
    if (!manifest) {
      throw new BadInputError(join(dataset.dir, 'manifest.csv'), `has no frame ${prediction.path}, a test frame of fold ${unit.fold} (${unit.predictions}): pass the dataset the run was trained on (--data)`);
    }
    if (manifest.source !== prediction.source || manifest.label !== prediction.label) {
      throw new BadInputError(join(dataset.dir, 'manifest.csv'), `${prediction.path}: source or label differ from ${unit.predictions}: pass the dataset the run was trained on (--data)`);
    }
    const group = groups.get(manifest.source) ?? { source: manifest.source, kind: manifest.kind, rows: [] };
    group.rows.push({ manifest, prediction });
    groups.set(manifest.source, group);
  }
  for (const group of groups.values()) group.rows.sort((a, b) => a.manifest.frame - b.manifest.frame);
  return { groups: [...groups.values()], classes: table.classes };
}

export async function measureRobustness(options: RobustnessOptions): Promise<RobustnessMeasurement> {
  const perturbations = selectPerturbations(options.perturbations);
  const seed = options.seed ?? 0;
  const batchSize = options.batchSize ?? 16;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new PocovidError(`batch size must be a positive integer, got ${batchSize}`);
  const videoAggregation = options.videoAggregation ?? 'mean';
  const all = runFoldUnits(options.run);
  const units = options.folds === undefined ? all : [...new Set(options.folds)].map((fold) => {
    const unit = all.find((u) => u.fold === fold);
    if (!unit) throw new BadInputError(options.run, `has no fold ${fold}; folds present: ${all.map((u) => u.fold).join(', ')}`);
    return unit;
  });
  const data = resolveDataset(options.run, options.data);
  const dataset = openDataset(data);
  const native: NativeSources = locateNativeSources(dataset, options.source);
  await initEngine();

  const records: FrameRecord[] = [];
  const skipped: SkippedSource[] = [];
  const nativeFallbacks: { source: string; reason: string }[] = [];
  let nativeMismatch = 0;
  const folds: RobustnessMeasurement['folds'] = [];
  let classes: string[] | undefined;
  let checked = 0;
  let agree = 0;
  let worst = 0;

  // Every fold's test frames are checked against the dataset before any model runs.
  const plan = units.map((unit) => ({ unit, ...testSources(unit, dataset) }));
  const progress = createProgress({ label: 'robustness', total: plan.reduce((n, p) => n + p.groups.length, 0), quiet: options.quiet });
  let done = 0;
  for (const { unit, groups, classes: tested } of plan) {
    const loaded = await loadModelDir(unit.modelDir);
    if (loaded.members.length !== 1) throw new BadInputError(unit.modelDir, `holds ${loaded.members.length} models; a fold's model folder holds one`);
    const model = loaded.members[0]!;
    const cfg = loaded.meta.cfg;
    if (classes && JSON.stringify(classes) !== JSON.stringify(loaded.meta.classes)) {
      throw new BadInputError(unit.modelDir, `classes ${loaded.meta.classes.join(', ')} differ from the other folds' (${classes.join(', ')})`);
    }
    if (JSON.stringify(tested) !== JSON.stringify(loaded.meta.classes)) {
      throw new BadInputError(unit.predictions, `has classes ${tested.join(', ')}; the fold's model ${loaded.meta.classes.join(', ')}`);
    }
    classes = loaded.meta.classes;
    const k = classes.length;
    let runner: ForwardRunner | undefined;
    let frames = 0;
    try {
      runner = await createForwardRunner(model, { runtime: options.runtime ?? 'auto', notice: options.notice });
      for (const group of groups) {
        let stored: RgbImage[];
        try {
          stored = await Promise.all(group.rows.map((r) => decodeImage(join(dataset.dir, r.manifest.path))));
        } catch (err) {
          skipped.push({ source: group.source, reason: (err as Error).message });
          progress.update(++done, `fold ${unit.fold}`);
          continue;
        }
        const mirror = options.mirrorAverage ? { cfg } : undefined;
        const clean = await classify(runner, clipToInputs(stored, cfg), k, batchSize, mirror);
        const groupRecords: FrameRecord[] = group.rows.map(({ manifest, prediction }, i) => {
          const probs = clean[i]!;
          worst = Math.max(worst, ...probs.map((p, c) => Math.abs(p - prediction.probs[c]!)));
          if (argMax(probs) === argMax(prediction.probs)) agree++;
          checked++;
          return { path: manifest.path, source: manifest.source, patient: manifest.patient, fold: unit.fold, label: manifest.label, clean: probs, perturbed: {} };
        });
        let nativeFrames: Promise<readonly RgbImage[] | undefined> | undefined;
        const sourceFrames: SourceFrames = {
          source: group.source,
          kind: group.kind,
          paths: group.rows.map((r) => r.manifest.path),
          stored,
          native: () =>
            (nativeFrames ??= decodeNativeFrames(native, group.source, group.kind, group.rows.map((r) => r.manifest.frame), stored).then((result) => {
              if ('reason' in result) {
                // With no source folder at all, `native.unavailable` says it once for every source.
                if (native.dir) nativeFallbacks.push({ source: group.source, reason: result.reason });
                return undefined;
              }
              nativeMismatch = Math.max(nativeMismatch, result.worstMismatch);
              return result.images;
            })),
        };
        for (const perturbation of perturbations) {
          if (perturbation.videosOnly && group.kind !== 'video') continue;
          try {
            const { images, origin } = await perturbation.apply(sourceFrames, { seed, fps: native.fps });
            const probs = await classify(runner, clipToInputs(images, cfg), k, batchSize, mirror);
            groupRecords.forEach((record, i) => {
              record.perturbed[perturbation.name] = { probs: probs[i]!, pixelChange: meanAbsoluteDifference(stored[i]!, images[i]!), origin };
            });
          } catch (err) {
            skipped.push({ source: group.source, perturbation: perturbation.name, reason: (err as Error).message });
          }
        }
        records.push(...groupRecords);
        frames += groupRecords.length;
        progress.update(++done, `fold ${unit.fold}`);
      }
      const conformal = loaded.meta.conformal;
      folds.push({ fold: unit.fold, runtime: runner.runtime, frames, model: unit.modelDir, ...(conformal ? { conformal } : {}) });
    } finally {
      await runner?.dispose();
      model.dispose();
    }
  }
  progress.stop();
  if (!classes) throw new PocovidError('no fold to measure');
  return {
    run: options.run,
    data,
    classes,
    seed,
    videoAggregation,
    batchSize,
    mirrorAverage: options.mirrorAverage === true,
    perturbations,
    folds,
    native: { dir: native.dir ?? null, unavailable: native.unavailable ?? null, fps: native.fps, maxFrames: native.maxFrames, worstMismatch: nativeMismatch, fallbacks: nativeFallbacks },
    skipped,
    records,
    cleanCheck: { frames: checked, maxAbsDifference: worst, labelAgreement: checked === 0 ? 1 : agree / checked },
  };
}
