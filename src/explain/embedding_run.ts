// `pocovid explain tsne`: the penultimate features of a fold's test frames embedded in 2-d
// (t-SNE, PCA or UMAP), as a scatter coloured by class, a thumbnail map and embedding.csv.
import { join } from 'node:path';
import { formatCsv } from '../data/csv.js';
import { pixelsToInput } from '../models/preprocess.js';
import { writeFileAtomic } from '../util/atomic.js';
import { embed2d, extractFeaturesAndPredictions, type EmbeddingMethod } from './embedding.js';
import type { RuntimeChoice } from '../onnx/index.js';
import { renderEmbeddingScatter, renderThumbnailMap, type EmbeddedFrame } from './embedding_plots.js';
import { loadRunModel, runDataset, testItems, type RunModel } from './run_data.js';

export interface EmbeddingRunOptions {
  run: string;
  fold?: number;
  out: string;
  method?: EmbeddingMethod;
  seed?: number;
  /** Engine of the feature extraction (default 'auto': ONNX Runtime where it loads). */
  runtime?: RuntimeChoice;
  log?: (line: string) => void;
}

export async function renderEmbedding(options: EmbeddingRunOptions): Promise<{ points: EmbeddedFrame[]; scatter: string; thumbnails: string }> {
  const loaded = await loadRunModel(options.run, options.fold);
  // Loaded for this call only: its weights are released however it ends.
  try {
    return await embedding(options, loaded);
  } finally {
    loaded.model.dispose();
  }
}

async function embedding(options: EmbeddingRunOptions, { model, cfg, classes, fold }: RunModel): Promise<{ points: EmbeddedFrame[]; scatter: string; thumbnails: string }> {
  const method = options.method ?? 'tsne';
  const items = await testItems(runDataset(options.run, fold), fold ?? 0, cfg);
  const frames = items.flatMap((item) => item.frames.map((frame, i) => ({ frame, label: item.label ?? '', path: item.paths?.[i] ?? item.name })));
  const inputs = frames.map((f) => pixelsToInput(f.frame.rgb, cfg));
  options.log?.(`${frames.length} test frames of fold ${fold ?? 0}; features at ${cfg.featureLayer}`);
  const { features, probabilities } = await extractFeaturesAndPredictions(model, cfg.featureLayer, inputs, { runtime: options.runtime ?? 'auto' });
  const predicted = probabilities.map((p) => classes[p.indexOf(Math.max(...p))]!);
  const started = Date.now();
  const coords = embed2d(features, method, options.seed ?? 0);
  options.log?.(`${method} of ${features.length}×${features[0]?.length ?? 0} features in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const points: EmbeddedFrame[] = coords.map(([x, y], i) => ({ x, y, label: frames[i]!.label, predicted: predicted[i]!, path: frames[i]!.path }));
  const name = method === 'tsne' ? 't-SNE' : method.toUpperCase();
  const title = `${name} of ${cfg.featureLayer} features · ${model.name} · fold ${fold ?? 0} test frames`;
  const base = join(options.out, `embedding-${method}`);
  const scatter = await renderEmbeddingScatter(points, classes, base, title);
  const thumbnails = `${base}-thumbnails.png`;
  await renderThumbnailMap(points, frames.map((f) => f.frame), classes, thumbnails, { title: `${title} (border = label)` });
  await writeFileAtomic(`${base}.csv`, formatCsv([['path', 'label', 'predicted', 'x', 'y'], ...points.map((p) => [p.path, p.label, p.predicted ?? '', p.x, p.y])]));
  return { points, scatter: scatter.pngPath, thumbnails };
}
