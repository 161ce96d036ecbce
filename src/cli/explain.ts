// `pocovid explain [files...]`, `pocovid explain classes`, `pocovid explain tsne`: parse options and
// call src/explain.
import { Command, InvalidArgumentError, Option } from 'commander';
import { initEngine } from '../engine/index.js';
import { renderClassPictures } from '../explain/class_run.js';
import { EMBEDDING_METHODS, type EmbeddingMethod } from '../explain/embedding.js';
import { renderEmbedding } from '../explain/embedding_run.js';
import { renderInversions } from '../explain/invert_run.js';
import { EXPLAIN_METHODS, explain, type ExplainMethod } from '../explain/explain_run.js';
import type { OcclusionFill } from '../explain/occlusion.js';
import { RUNTIME_CHOICES, type RuntimeChoice } from '../onnx/runtime.js';
import { fps, integer, numberIn, seed, someOf } from './options.js';

const runtimeOption = (what: string): Option =>
  new Option('--runtime <engine>', `${what} on ONNX Runtime (ort), TF.js (tfjs), or ort where it loads (auto)`).choices([...RUNTIME_CHOICES]).default('auto');

const methodList = someOf(EXPLAIN_METHODS, ['all']);
function parseMethods(value: string): ExplainMethod[] | 'all' {
  const names = methodList(value);
  return names.includes('all' as ExplainMethod) ? 'all' : names;
}

const fillValue = numberIn({});
function parseFill(value: string): OcclusionFill {
  if (value === 'mean' || value === 'zero' || value === 'black') return value;
  try {
    return fillValue(value);
  } catch {
    throw new InvalidArgumentError('Expected mean, zero, black or a number.');
  }
}

const fold = integer(0);
const positive = integer(1);

const log = (line: string): void => console.error(line);

export function register(program: Command): void {
  // The parent takes no options: commander hands a parent every option it knows, even one written
  // after a sub-command, and classes/tsne have their own --run, --out and --method.
  const cmd = program
    .command('explain')
    .description('explanations: maps + uncertainty gallery (default), class pictures (classes), feature inversion (invert), feature embedding (tsne)');

  cmd
    .command('maps', { isDefault: true })
    .description('explanation maps (Grad-CAM, CAM, saliency, occlusion) and MC-dropout uncertainty for a run, as PNGs and an HTML gallery; `pocovid explain --run ...` runs this')
    .argument('[files...]', 'images or videos (default: the fold\'s test frames from the run\'s dataset)')
    .requiredOption('--run <dir>', 'training run (fold-<k>/model folders, or a single-fold model/) or a model folder')
    .option('--fold <k>', 'fold whose model (and test frames) to use; default: the lowest fold', fold)
    .option('--method <list>', `comma-separated: ${EXPLAIN_METHODS.join(', ')} or all`, parseMethods, 'all' as const)
    .requiredOption('--out <dir>', 'output folder: index.html, maps/, explanations.json, uncertainty.csv')
    .option('--mc-passes <n>', 'MC-dropout passes (0 = none)', integer(0, 10_000), 20)
    .option('--seed <n>', 'seed of the MC-dropout masks', seed, 0)
    .option('--limit <n>', 'at most this many test videos/images (0 = all)', integer(0), 0)
    .option('--occlusion-patch <px>', 'occlusion patch side (default: input side / 7)', positive)
    .option('--occlusion-stride <px>', 'occlusion stride (default: the patch side; smaller = overlapping patches, slower)', positive)
    .option('--occlusion-fill <fill>', 'mean, zero, black or a number (network-input units)', parseFill, 'mean' as OcclusionFill)
    .option('--occlusion-batch <n>', 'occluded copies per forward pass', positive, 16)
    .addOption(runtimeOption('plain forward passes (probabilities, occlusion); gradient maps and MC dropout use TF.js'))
    .option('--fps <n>', 'frames per second sampled from videos', fps, 3)
    .option('--max-frames <n>', 'at most this many frames per video', positive, 30)
    .option('--no-guard', 'explain even files the not-ultrasound guard refuses (they are marked "guard overridden"; by default they are listed with the reason and not explained)')
    .action(async (files: string[], o: {
      run: string; fold?: number; method: ExplainMethod[] | 'all'; out: string; mcPasses: number; seed: number; limit: number;
      occlusionPatch?: number; occlusionStride?: number; occlusionFill: OcclusionFill; occlusionBatch: number; fps: number; maxFrames: number; runtime: RuntimeChoice; guard: boolean;
    }) => {
      await initEngine();
      const started = Date.now();
      const result = await explain({
        run: o.run,
        fold: o.fold,
        files,
        methods: o.method,
        out: o.out,
        mcPasses: o.mcPasses,
        seed: o.seed,
        limit: o.limit,
        occlusion: { patch: o.occlusionPatch, stride: o.occlusionStride, fill: o.occlusionFill, batchSize: o.occlusionBatch },
        fps: o.fps,
        maxFrames: o.maxFrames,
        runtime: o.runtime,
        guard: o.guard,
        log,
      });
      const explained = result.items.filter((i) => i.predicted !== null);
      const frames = explained.reduce((n, i) => n + i.frames.length, 0);
      const refused = result.items.length - explained.length;
      const overridden = result.items.filter((i) => i.guard?.overridden).length;
      console.log(
        `explained ${explained.length} item(s), ${frames} frame(s) with ${result.methods.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s → ${result.index}` +
          (refused > 0 ? `; ${refused} refused by the not-ultrasound guard (not explained; --no-guard explains them)` : '') +
          (overridden > 0 ? `; ${overridden} explained although the guard refused them (--no-guard)` : ''),
      );
    });

  cmd
    .command('classes')
    .description('one picture per class by gradient ascent on the class score (grey updates unless --color)')
    .requiredOption('--run <dir>', 'training run or model folder')
    .option('--fold <k>', 'fold whose model to use; default: the lowest fold', fold)
    .requiredOption('--out <dir>', 'output folder')
    .option('--color', 'unconstrained colour updates (for comparison)')
    .option('--steps <n>', 'gradient-ascent steps', integer(1, 100_000), 100)
    .option('--seed <n>', 'seed of the start noise and jitter', seed, 0)
    .action(async (o: { run: string; fold?: number; out: string; color?: boolean; steps: number; seed: number }) => {
      await initEngine();
      const { panel } = await renderClassPictures({ run: o.run, fold: o.fold, out: o.out, color: o.color ?? false, steps: o.steps, seed: o.seed, log });
      console.log(`wrote ${panel}`);
    });

  cmd
    .command('invert')
    .description('feature inversion: from grey noise, gradient descent on a picture until its features at a layer match a frame\'s; one panel per frame with every model of the run')
    .argument('[files...]', 'images or videos (a video\'s middle sampled frame); default: test frames of the first fold')
    .requiredOption('--run <dir>', 'training run (every fold\'s model) or a model folder (every member)')
    .option('--fold <list>', 'only these folds\' models, comma-separated')
    .option('--layer <list>', 'base (end of the pretrained base), penultimate (the feature layer) or layer names, comma-separated', 'base,penultimate')
    .requiredOption('--out <dir>', 'output folder: index.html, one panel per frame, inversions.json')
    .option('--steps <n>', 'gradient-descent steps', integer(0), 200)
    .option('--step-size <x>', 'mean absolute pixel change per step at the start ([0,1] units; decays to a tenth)', numberIn({ min: 0, exclusiveMin: true }), 0.01)
    .option('--tv <w>', 'weight of the total-variation smoothing', numberIn({ min: 0 }), 20)
    .option('--blur-every <n>', 'blur the picture (3×3) every n steps; 0 = never', integer(0), 4)
    .option('--color', 'unconstrained colour updates (default: grey)')
    .option('--seed <n>', 'seed of the start noise', seed, 0)
    .option('--limit <n>', 'test videos/images to invert when no files are given', integer(0), 4)
    .option('--fps <n>', 'frames per second sampled from videos', Number, 3)
    .option('--max-frames <n>', 'at most this many frames per video', integer(1), 30)
    .action(async (files: string[], o: {
      run: string; fold?: string; layer: string; out: string; steps: number; stepSize: number; tv: number; blurEvery: number; color?: boolean; seed: number; limit: number; fps: number; maxFrames: number;
    }) => {
      await initEngine();
      const started = Date.now();
      const result = await renderInversions({
        run: o.run,
        folds: o.fold?.split(',').map((f) => integer(0)(f.trim())),
        files,
        layers: o.layer.split(',').map((l) => l.trim()).filter(Boolean),
        out: o.out,
        steps: o.steps,
        stepSize: o.stepSize,
        tv: o.tv,
        blurEvery: o.blurEvery,
        color: o.color ?? false,
        seed: o.seed,
        limit: o.limit,
        fps: o.fps,
        maxFrames: o.maxFrames,
        log,
      });
      console.log(`inverted ${result.panels.length} frame(s), ${result.inversions.length} inversion(s) in ${((Date.now() - started) / 1000).toFixed(1)} s → ${result.index}`);
    });

  cmd
    .command('tsne')
    .description('2-d embedding of the penultimate features of a fold\'s test frames: scatter by class and thumbnail map')
    .requiredOption('--run <dir>', 'training run')
    .requiredOption('--out <dir>', 'output folder')
    .addOption(new Option('--method <m>', 'embedding').choices([...EMBEDDING_METHODS]).default('tsne'))
    .option('--fold <k>', 'fold; default: the lowest fold', fold)
    .option('--seed <n>', 'seed of the embedding', seed, 0)
    .addOption(runtimeOption('feature extraction'))
    .action(async (o: { run: string; out: string; method: EmbeddingMethod; fold?: number; seed: number; runtime: RuntimeChoice }) => {
      await initEngine();
      const result = await renderEmbedding({ run: o.run, fold: o.fold, out: o.out, method: o.method, seed: o.seed, runtime: o.runtime, log });
      console.log(`wrote ${result.scatter} and ${result.thumbnails} (${result.points.length} frames)`);
    });
}
