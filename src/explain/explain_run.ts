// `pocovid explain`: maps (Grad-CAM, CAM, saliency, occlusion) and MC-dropout uncertainty for a
// run's test frames or the user's files, written as PNG figures, explanations.json,
// uncertainty.csv and an HTML gallery (<out>/index.html).
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { formatCsv } from '../data/csv.js';
import { PocovidError, UnknownChoiceError } from '../errors.js';
import { clipInputs } from '../models/preprocess.js';
import { writeFileAtomic } from '../util/atomic.js';
import { createRng } from '../util/rng.js';
import { classActivationMap, supportsCam } from './cam.js';
import { frameFigure, mapFigure } from './figure.js';
import { galleryHtml, type GalleryItem } from './gallery.js';
import { gradCam } from './gradcam.js';
import { createForwardRunner, type ForwardRunner, type RuntimeChoice } from '../onnx/index.js';
import { occlusionMap, runnerForward, type ForwardFn, type OcclusionOptions } from './occlusion.js';
import { fileItems, loadRunModel, runDataset, testItems, type ExplainItem, type RunModel } from './run_data.js';
import { saliencyMap } from './saliency.js';
import { mcDropout, videoMcDropout } from './uncertainty.js';
import { checkProbabilities } from '../infer/finite.js';

export const EXPLAIN_METHODS = ['gradcam', 'cam', 'saliency', 'occlusion'] as const;
export type ExplainMethod = (typeof EXPLAIN_METHODS)[number];

export interface ExplainOptions {
  run: string;
  fold?: number;
  /** Images or videos; none = the fold's test frames from the run's dataset. */
  files?: string[];
  /** Methods, or 'all' (CAM included only where the model has the CAM structure). */
  methods: ExplainMethod[] | 'all';
  out: string;
  /** MC-dropout passes (0 = none; default 20). */
  mcPasses?: number;
  seed?: number;
  /** At most this many items (sources) from the test fold; 0 = all. */
  limit?: number;
  occlusion?: Omit<OcclusionOptions, 'classIndex' | 'cfg'>;
  /** Plain forward passes (probabilities, occlusion); default: a runner on `runtime`. */
  forward?: ForwardFn;
  /** Engine of the plain forward passes when `forward` is not given (default 'auto'); gradient maps and MC dropout use TF.js. */
  runtime?: RuntimeChoice;
  fps?: number;
  maxFrames?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface ExplainResult {
  index: string;
  items: GalleryItem[];
  methods: ExplainMethod[];
}

function resolveMethods(requested: ExplainMethod[] | 'all', rm: RunModel): ExplainMethod[] {
  const hasCam = supportsCam(rm.model, rm.cfg.camLayer, rm.cfg.classifier);
  if (requested === 'all') return EXPLAIN_METHODS.filter((m) => m !== 'cam' || hasCam);
  for (const m of requested) if (!EXPLAIN_METHODS.includes(m)) throw new UnknownChoiceError('explanation method', m, [...EXPLAIN_METHODS, 'all']);
  if (requested.includes('cam') && !hasCam) {
    throw new PocovidError(`CAM needs a model whose classifier reads global average pooling of "${rm.cfg.camLayer}" (vgg16_cam); use --method gradcam for this model`);
  }
  return [...new Set(requested)];
}

interface MeanStd {
  mean: number[];
  std: number[];
}

const argMax = (p: number[]): number => p.indexOf(Math.max(...p));

export async function explain(options: ExplainOptions): Promise<ExplainResult> {
  const rm = await loadRunModel(options.run, options.fold);
  // The model is loaded for this call only: its weights go with it, whatever happens (a library
  // caller explaining one run after another must not keep every model it ever loaded).
  try {
    const { model, cfg } = rm;
    const methods = resolveMethods(options.methods, rm);
    const files = options.files ?? [];
    const items: ExplainItem[] =
      files.length > 0
        ? await fileItems(files, cfg, { fps: options.fps, maxFrames: options.maxFrames })
        : await testItems(runDataset(options.run, rm.fold), rm.fold ?? 0, cfg, options.limit ?? 0);
    const runner: ForwardRunner | undefined = options.forward ? undefined : await createForwardRunner(model, { runtime: options.runtime ?? 'auto' });
    try {
      return await explainWith(options, rm, methods, items, options.forward ?? runnerForward(runner!));
    } finally {
      await runner?.dispose();
    }
  } finally {
    rm.model.dispose();
  }
}

async function explainWith(options: ExplainOptions, rm: RunModel, methods: ExplainMethod[], items: ExplainItem[], forward: ForwardFn): Promise<ExplainResult> {
  const { model, cfg, classes } = rm;
  const log = options.log ?? (() => undefined);
  const [h, w] = cfg.inputSize;
  const shape: [number, number, number] = [h, w, cfg.channels];
  const passes = options.mcPasses ?? 20;
  const rng = createRng(options.seed ?? 0);
  const displayWidth = Math.max(224, w);
  const titles: Record<ExplainMethod, (c: string) => string> = {
    gradcam: (c) => `Grad-CAM (${cfg.camLayer}) · ${c}`,
    cam: (c) => `CAM (${cfg.camLayer}) · ${c}`,
    saliency: (c) => `Saliency |∂score/∂pixel| · ${c}`,
    occlusion: (c) => `Occlusion: drop in p(${c})`,
  };

  const gallery: GalleryItem[] = [];
  // Per-frame MC-dropout figures (for uncertainty.csv), by item id.
  const frameMc = new Map<string, MeanStd[]>();
  for (const [n, item] of items.entries()) {
    log(`[${n + 1}/${items.length}] ${item.name} (${item.frames.length} frame${item.frames.length === 1 ? '' : 's'})`);
    const inputs = clipInputs(item.frames, cfg);
    const flat = new Float32Array(inputs.length * h * w * cfg.channels);
    inputs.forEach((x, i) => flat.set(x, i * x.length));
    const probsFlat = await forward(flat, inputs.length);
    const k = probsFlat.length / inputs.length;
    const frameProbs = inputs.map((_, i) => Array.from(probsFlat.subarray(i * k, (i + 1) * k)));
    // A damaged model must not put a made-up class on a picture.
    frameProbs.forEach((row, i) => checkProbabilities(row, 'member-0', i));
    let mc: ReturnType<typeof mcDropout> | undefined;
    if (passes > 0) {
      const batch = tf.tensor4d(flat, [inputs.length, ...shape]);
      try {
        mc = mcDropout(model, batch, passes, rng.fork());
      } finally {
        batch.dispose();
      }
    }
    const probabilities = frameProbs[0]!.map((_, k) => frameProbs.reduce((a, p) => a + p[k]!, 0) / frameProbs.length);
    const video = mc ? videoMcDropout(mc, inputs.map((_, i) => i)) : undefined;
    const dir = join('maps', item.id);
    const frames: GalleryItem['frames'] = [];
    for (const [i, frame] of item.frames.entries()) {
      const classIndex = argMax(frameProbs[i]!);
      const className = classes[classIndex]!;
      const image = join(dir, `f${String(i).padStart(3, '0')}_frame.png`);
      // The gallery prints prediction and label next to each picture; the figure names the frame.
      const frameTitle = item.kind === 'video' ? `frame at t = ${frame.time.toFixed(1)} s` : 'frame';
      await writeFileAtomic(join(options.out, image), await frameFigure(frame.rgb, w, h, { title: frameTitle, displayWidth }));
      const maps: Record<string, string> = {};
      for (const method of methods) {
        const map = await explainFrame(method, inputs[i]!, classIndex);
        const file = join(dir, `f${String(i).padStart(3, '0')}_${method}.png`);
        const figure = await mapFigure(frame.rgb, w, h, map, {
          title: titles[method](className),
          displayWidth,
          high: method === 'occlusion' ? 'max drop' : 'high',
        });
        await writeFileAtomic(join(options.out, file), figure);
        maps[method] = file;
      }
      frames.push({ index: frame.index, time: frame.time, image, maps, probabilities: frameProbs[i]!, predicted: className });
    }
    gallery.push({
      id: item.id,
      name: item.name,
      kind: item.kind,
      ...(item.label === undefined ? {} : { label: item.label }),
      predicted: classes[argMax(probabilities)]!,
      probabilities,
      mcMean: video?.mean ?? null,
      mcStd: video?.std ?? null,
      frames,
    });
    if (mc) frameMc.set(item.id, mc.mean.map((m, i) => ({ mean: m, std: mc.std[i]! })));
  }

  async function explainFrame(method: ExplainMethod, input: Float32Array, classIndex: number): Promise<Float32Array> {
    if (method === 'occlusion') {
      return (await occlusionMap(forward, input, shape, { ...options.occlusion, classIndex, cfg })).map;
    }
    const x = tf.tensor4d(input, [1, ...shape]);
    try {
      if (method === 'gradcam') return gradCam(model, x, cfg.camLayer, classIndex).map;
      if (method === 'cam') return classActivationMap(model, x, cfg.camLayer, cfg.classifier, classIndex).map;
      return saliencyMap(model, x, classIndex).map;
    } finally {
      x.dispose();
    }
  }

  await writeOutputs(options, rm, methods, gallery, frameMc, passes);
  return { index: join(options.out, 'index.html'), items: gallery, methods };
}

async function writeOutputs(
  options: ExplainOptions,
  rm: RunModel,
  methods: ExplainMethod[],
  gallery: GalleryItem[],
  frameMc: Map<string, MeanStd[]>,
  passes: number,
): Promise<void> {
  const { classes, cfg } = rm;
  const rows: (string | number)[][] = [
    ['item', 'name', 'frame', 'time', 'label', 'predicted', ...classes.map((c) => `p_${c}`), ...classes.map((c) => `mc_mean_${c}`), ...classes.map((c) => `mc_std_${c}`)],
  ];
  const mcCells = (m?: MeanStd | null): (string | number)[] => (m ? [...m.mean, ...m.std] : new Array<string>(2 * classes.length).fill(''));
  for (const item of gallery) {
    const whole = item.mcMean && item.mcStd ? { mean: item.mcMean, std: item.mcStd } : null;
    rows.push([item.id, item.name, item.kind === 'video' ? 'all' : 0, '', item.label ?? '', item.predicted, ...item.probabilities, ...mcCells(whole)]);
    if (item.kind === 'video') {
      item.frames.forEach((f, i) => rows.push([item.id, item.name, f.index, f.time, item.label ?? '', f.predicted, ...f.probabilities, ...mcCells(frameMc.get(item.id)?.[i])]));
    }
  }
  await writeFileAtomic(join(options.out, 'uncertainty.csv'), formatCsv(rows));
  const json = {
    run: options.run,
    fold: rm.fold ?? null,
    model: rm.model.name,
    classes,
    camLayer: cfg.camLayer,
    methods,
    mcDropoutPasses: passes,
    seed: options.seed ?? 0,
    occlusion: options.occlusion ?? {},
    items: gallery,
  };
  await writeFileAtomic(join(options.out, 'explanations.json'), JSON.stringify(json, null, 2) + '\n');
  const methodTitles: Record<ExplainMethod, string> = { gradcam: 'Grad-CAM', cam: 'CAM', saliency: 'Saliency', occlusion: 'Occlusion' };
  const html = galleryHtml(gallery, {
    title: `Explanations · ${options.run}${rm.fold === undefined ? '' : ` · fold ${rm.fold}`}`,
    classes,
    methods: methods.map((m) => ({ key: m, title: methodTitles[m] })),
    notes: [
      `Maps explain the predicted class of each frame. Grad-CAM/CAM at layer ${cfg.camLayer}; saliency = max over channels of |∂ class score / ∂ input|; occlusion = mean drop in the class probability while a patch covers the pixel.`,
      passes > 0 ? `Uncertainty: ${passes} MC-dropout passes (dropout only; BatchNorm in inference mode); for a video, the spread of the mean over its frames.` : 'No MC-dropout passes were run.',
    ],
  });
  await writeFileAtomic(join(options.out, 'index.html'), html);
}
