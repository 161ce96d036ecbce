// `pocovid update`: training further as new samples arrive (the seed paper's proposal). Each fold
// model of a run continues on a new dataset through the ordinary trainer (trainFold: the new
// data's own validation split chooses the checkpoint and calibrates the prediction sets):
//   head:      the part the run trained (its saved `trainable` flags) is fine-tuned;
//   new-layer: a Dense layer is put before the classifier and only it is trained. It starts as the
//              identity (kernel I, bias 0, ReLU on features that are ReLU outputs already), so the
//              model begins exactly where the run left it.
// Before and after, the model is scored on the new data's test fold (the gain) and on the run's
// own test fold (the forgetting), all four with the same forward pass.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openDataset } from '../data/dataset.js';
import { readImageAsInput } from '../data/image.js';
import type { ManifestRow } from '../data/types.js';
import { BadInputError } from '../errors.js';
import { writePredictionsCsv } from '../eval/csv.js';
import { computeMetrics } from '../eval/evaluate.js';
import { aggregateVideos } from '../eval/video.js';
import type { PredictionRow } from '../eval/types.js';
import { layersModelFromFiles, type LayersFiles } from '../model_dir/layers_io.js';
import { insertLayerBeforeClassifier, type UpdateMode } from '../models/insert_layer.js';
import { loadModelDir, readMemberFiles, readModelMeta } from '../model_dir/model_dir.js';
import { runFoldDirs } from '../model_dir/run.js';
import { cutModel, freezeAllButLast } from '../models/cut.js';
import { preprocessorFor } from '../models/preprocess.js';
import type { BuiltModel, PretrainedCfg } from '../models/types.js';
import { createForwardRunner } from '../onnx/runtime.js';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic.js';
import type { TrainConfig, TrainConfigInput } from './config.js';
import { argmax } from './head_trainer.js';
import { createProgress } from './progress.js';
import { trainFold } from './train_fold.js';
import { toolVersions } from './versions.js';

export { UPDATE_MODES, type UpdateMode } from '../models/insert_layer.js';

/** Options of `pocovid update`; the rest of the recipe is the run's own (its fold's config.json). */
export interface UpdateOptions {
  run: string;
  data: string;
  out: string;
  mode?: UpdateMode;
  /** Folds of the run whose models to update (default: all). */
  folds?: number[];
  /** The new dataset's test fold; its other folds train (default 0). */
  newTestFold?: number;
  epochs?: number;
  lr?: number;
  batchSize?: number;
  seed?: number;
  views?: number;
  augment?: boolean;
  validationFraction?: number;
  patience?: number;
  runtime?: 'auto' | 'ort' | 'tfjs';
  quiet?: boolean;
}

interface RunFold {
  fold: number;
  modelDir: string;
  /** The fold's resolved training config (what the run trained with). */
  config: TrainConfig & { classes: string[] };
}

/** The fold models of a run with their resolved configs: <run>/fold-<k>/ or a single-fold <run>/. */
export function runFolds(run: string): RunFold[] {
  const read = (file: string): RunFold['config'] => {
    if (!existsSync(file)) throw new BadInputError(file, 'missing: `pocovid update` needs the config.json the trainer wrote next to the model');
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as RunFold['config'];
    } catch (err) {
      throw new BadInputError(file, `invalid JSON (${(err as Error).message})`);
    }
  };
  const folds = runFoldDirs(run).map(({ fold, dir }) => ({ fold, modelDir: dir, config: read(join(run, `fold-${fold}`, 'config.json')) }));
  if (folds.length > 0) return folds;
  if (existsSync(join(run, 'model', 'pocovid.json'))) {
    const config = read(join(run, 'config.json'));
    return [{ fold: config.fold, modelDir: join(run, 'model'), config }];
  }
  throw new BadInputError(run, 'not a training run (no model/pocovid.json or fold-<k>/model/pocovid.json)');
}

/** A saved fold model as the trainer's BuiltModel: frozen as its saved flags say, cut into backbone and head. */
async function builtFromFiles(files: LayersFiles, name: string, cfg: PretrainedCfg, numClasses: number): Promise<BuiltModel> {
  const model = await layersModelFromFiles(files);
  try {
    // Frozen BatchNorm layers must run in inference mode (see freezeAllButLast); no unit changes.
    freezeAllButLast(model, [], 0);
    const { backbone, head } = cutModel(model);
    const trainableLayers = model.layers.filter((l) => l.trainable && l.trainableWeights.length > 0).length;
    return { name, cfg, numClasses, trainableLayers, model, backbone, head };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** Class probabilities of `rows` of a dataset by the model in `modelDir`, preprocessed as it was trained. */
export async function predictDatasetRows(modelDir: string, dataset: string, rows: readonly ManifestRow[], runtime: UpdateOptions['runtime'] = 'auto'): Promise<PredictionRow[]> {
  const loaded = await loadModelDir(modelDir);
  const { classes, cfg } = loaded.meta;
  const model = loaded.members[0]!;
  const runner = await createForwardRunner(model, { runtime });
  const out: PredictionRow[] = [];
  try {
    const batch = 16;
    const size = cfg.inputSize[0] * cfg.inputSize[1] * cfg.channels;
    const preprocess = preprocessorFor(cfg);
    for (let start = 0; start < rows.length; start += batch) {
      const chunk = rows.slice(start, start + batch);
      const flat = new Float32Array(chunk.length * size);
      for (const [i, row] of chunk.entries()) flat.set(await readImageAsInput(join(dataset, row.path), preprocess), i * size);
      const [probs] = await runner.run(flat, chunk.length);
      chunk.forEach((row, i) => {
        const p = Array.from(probs!.subarray(i * classes.length, (i + 1) * classes.length));
        out.push({ path: row.path, source: row.source, patient: row.patient, fold: row.fold, label: row.label, predicted: classes[argmax(p)]!, probs: p });
      });
    }
  } finally {
    await runner.dispose();
    loaded.members.forEach((m) => m.dispose());
  }
  return out;
}

export interface Scores {
  frames: number;
  videos: number;
  frameAccuracy: number;
  frameBalancedAccuracy: number;
  videoAccuracy: number;
  videoBalancedAccuracy: number;
}

function scoresOf(rows: readonly PredictionRow[], classes: readonly string[]): Scores {
  const frame = computeMetrics(rows, classes).metrics;
  const video = computeMetrics(aggregateVideos(rows, classes, 'mean'), classes).metrics;
  return { frames: frame.n, videos: video.n, frameAccuracy: frame.accuracy, frameBalancedAccuracy: frame.balancedAccuracy, videoAccuracy: video.accuracy, videoBalancedAccuracy: video.balancedAccuracy };
}

export interface FoldUpdate {
  fold: number;
  out: string;
  /** The run's model, then the updated one, on the new data's test fold. */
  newData: { before: Scores; after: Scores };
  /** The same two on the run's own test fold (its dataset's fold `fold`). */
  oldData: { before: Scores; after: Scores };
  bestEpoch: number;
  addedLayer?: string;
}

export interface UpdateResult {
  out: string;
  mode: UpdateMode;
  folds: FoldUpdate[];
}

const pct = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
const delta = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) ? `${b - a >= 0 ? '+' : ''}${(b - a).toFixed(3)}` : 'n/a');

function updateMarkdown(result: UpdateResult, options: UpdateOptions, newTestFold: number): string {
  const rows: string[] = [];
  for (const f of result.folds) {
    for (const [what, pair] of [[`new data, test fold ${newTestFold} (gain)`, f.newData], [`run's test fold ${f.fold} (forgetting)`, f.oldData]] as const) {
      rows.push(
        `| ${f.fold} | ${what} | ${pair.before.frames} / ${pair.before.videos} | ${pct(pair.before.frameAccuracy)} → ${pct(pair.after.frameAccuracy)} (${delta(pair.before.frameAccuracy, pair.after.frameAccuracy)}) | ${pct(pair.before.frameBalancedAccuracy)} → ${pct(pair.after.frameBalancedAccuracy)} (${delta(pair.before.frameBalancedAccuracy, pair.after.frameBalancedAccuracy)}) | ${pct(pair.before.videoAccuracy)} → ${pct(pair.after.videoAccuracy)} (${delta(pair.before.videoAccuracy, pair.after.videoAccuracy)}) | ${pct(pair.before.videoBalancedAccuracy)} → ${pct(pair.after.videoBalancedAccuracy)} (${delta(pair.before.videoBalancedAccuracy, pair.after.videoBalancedAccuracy)}) |`,
      );
    }
  }
  return [
    `# Update of ${options.run} on ${options.data}`,
    '',
    `Mode: **${result.mode}** (${result.mode === 'head' ? 'the part the run trained is fine-tuned' : 'a layer before the classifier, starting as the identity, is the only one trained'}). ` +
      `Each fold model of the run continues on the new dataset's training folds (its validation split chooses the checkpoint); before → after on the new data's test fold (the gain) and on the run's own test fold (the forgetting).`,
    '',
    '_Research use only; not a diagnostic device._',
    '',
    '| Run fold | Scored on | Frames / videos | Frame accuracy | Frame balanced acc. | Video accuracy | Video balanced acc. |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    'Video level: the argmax of the mean frame probability. Every figure is from the same forward pass of the saved model folders (the run\'s fold model before, `fold-<k>/model` after).',
    '',
  ].join('\n');
}

export async function updateRun(options: UpdateOptions): Promise<UpdateResult> {
  const mode = options.mode ?? 'head';
  const out = resolve(options.out);
  const progress = createProgress(process.stderr, options.quiet);
  const all = runFolds(options.run);
  const chosen = options.folds ?? all.map((f) => f.fold);
  const missing = chosen.filter((k) => !all.some((f) => f.fold === k));
  if (missing.length > 0) throw new BadInputError(options.run, `has no fold ${missing.join(', ')}; folds present: ${all.map((f) => f.fold).join(', ')}`);
  const newTestFold = options.newTestFold ?? 0;
  const newData = openDataset(options.data);
  if (newTestFold >= newData.info.folds) throw new BadInputError(options.data, `has no fold ${newTestFold}; its folds are 0..${newData.info.folds - 1}`);
  writeJsonAtomicSync(join(out, 'config.json'), { kind: 'update', ...options, out, mode, folds: chosen, newTestFold, tools: toolVersions() });

  const result: UpdateResult = { out, mode, folds: [] };
  for (const fold of chosen) {
    const source = all.find((f) => f.fold === fold)!;
    const meta = readModelMeta(source.modelDir);
    const foldOut = join(out, `fold-${fold}`);
    progress.log(`fold ${fold}: ${mode} update of ${source.modelDir} on ${options.data} (test fold ${newTestFold})`);
    let addedLayer: string | undefined;
    const { testPredictions: _p, ...rest } = source.config as TrainConfig & { testPredictions?: unknown };
    const input: TrainConfigInput = {
      ...pickRecipe(rest),
      data: options.data,
      fold: newTestFold,
      out: foldOut,
      model: meta.name,
      init: source.modelDir,
      classes: meta.classes,
      epochs: options.epochs ?? 10,
      ...(options.lr !== undefined ? { lr: options.lr } : {}),
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      ...(options.views !== undefined ? { views: options.views } : {}),
      ...(options.augment !== undefined ? { augment: options.augment } : {}),
      ...(options.validationFraction !== undefined ? { validationFraction: options.validationFraction } : {}),
      ...(options.patience !== undefined ? { earlyStoppingPatience: options.patience } : {}),
      ...(options.runtime !== undefined ? { runtime: options.runtime } : {}),
    };
    const trained = await trainFold(input, {
      quiet: options.quiet,
      progress,
      model: async () => {
        let files = readMemberFiles(source.modelDir, meta.members[0]!, meta.files);
        if (mode === 'new-layer') {
          const edited = insertLayerBeforeClassifier(files, meta.cfg.classifier);
          files = edited.files;
          addedLayer = edited.layer;
        }
        return { built: await builtFromFiles(files, meta.name, meta.cfg, meta.classes.length), weightsUsed: { kind: 'init-run', path: source.modelDir } };
      },
    });

    // Before and after, on the new data's test fold and on the run's own test fold.
    const newTest = newData.rows.filter((r) => r.fold === newTestFold && meta.classes.includes(r.label));
    const oldDataset = openDataset(resolveDataset(source.config.data, options.run));
    const oldTest = oldDataset.rows.filter((r) => r.fold === fold && meta.classes.includes(r.label));
    const updatedDir = join(foldOut, 'model');
    const runtime = options.runtime ?? 'auto';
    const scored = {
      new_test_before: await predictDatasetRows(source.modelDir, options.data, newTest, runtime),
      new_test_after: await predictDatasetRows(updatedDir, options.data, newTest, runtime),
      old_test_before: await predictDatasetRows(source.modelDir, oldDataset.dir, oldTest, runtime),
      old_test_after: await predictDatasetRows(updatedDir, oldDataset.dir, oldTest, runtime),
    };
    for (const [name, rows] of Object.entries(scored)) writePredictionsCsv(join(foldOut, `${name}.csv`), rows, meta.classes);
    const entry: FoldUpdate = {
      fold,
      out: foldOut,
      newData: { before: scoresOf(scored.new_test_before, meta.classes), after: scoresOf(scored.new_test_after, meta.classes) },
      oldData: { before: scoresOf(scored.old_test_before, meta.classes), after: scoresOf(scored.old_test_after, meta.classes) },
      bestEpoch: trained.bestEpoch,
      ...(addedLayer ? { addedLayer } : {}),
    };
    result.folds.push(entry);
    progress.log(
      `fold ${fold}: new data frame accuracy ${pct(entry.newData.before.frameAccuracy)} → ${pct(entry.newData.after.frameAccuracy)}, ` +
        `run's test fold ${pct(entry.oldData.before.frameAccuracy)} → ${pct(entry.oldData.after.frameAccuracy)}`,
    );
  }
  writeJsonAtomicSync(join(out, 'update.json'), { ...result, options: { ...options, mode, newTestFold } });
  writeFileAtomicSync(join(out, 'update.md'), updateMarkdown(result, options, newTestFold));
  return result;
}

/** What a run's fold config says about the recipe (not where it ran or on what). */
function pickRecipe(config: Partial<TrainConfig>): Partial<TrainConfigInput> {
  const keys = [
    'epochs', 'batchSize', 'lr', 'lrDecay', 'augment', 'augmentation', 'colour', 'weightDecay', 'labelSmoothing', 'mixup', 'views', 'featureCache', 'seed',
    'classWeights', 'validationFraction', 'earlyStoppingPatience', 'plateauPatience', 'plateauFactor', 'inputSize', 'runtime', 'conformal', 'coverage',
  ] as const;
  const recipe: Record<string, unknown> = {};
  for (const key of keys) if (config[key] !== undefined) recipe[key] = config[key];
  return recipe as Partial<TrainConfigInput>;
}

/** A dataset path as the run recorded it: absolute, relative to where it ran, or to the run. */
function resolveDataset(data: string, run: string): string {
  for (const candidate of [resolve(data), resolve(run, data), resolve(run, '..', data)]) {
    if (existsSync(join(candidate, 'manifest.csv'))) return candidate;
  }
  throw new BadInputError(join(run, 'config.json'), `its dataset "${data}" has no manifest.csv: the run's test fold cannot be scored`);
}

