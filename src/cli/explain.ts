// `pocovid explain [files...]`, `pocovid explain classes`, `pocovid explain tsne`: parse options and
// call src/explain.
import { Command, Option } from 'commander';
import { initEngine } from '../engine/index.js';
import { PocovidError } from '../errors.js';
import { renderClassPictures } from '../explain/class_run.js';
import { EMBEDDING_METHODS, type EmbeddingMethod } from '../explain/embedding.js';
import { renderEmbedding } from '../explain/embedding_run.js';
import { renderInversions } from '../explain/invert_run.js';
import { EXPLAIN_METHODS, explain, type ExplainMethod } from '../explain/explain_run.js';
import type { OcclusionFill } from '../explain/occlusion.js';
import { RUNTIME_CHOICES, type RuntimeChoice } from '../onnx/index.js';

const runtimeOption = (what: string): Option =>
  new Option('--runtime <engine>', `${what} on ONNX Runtime (ort), TF.js (tfjs), or ort where it loads (auto)`).choices([...RUNTIME_CHOICES]).default('auto');

const int = (what: string) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new PocovidError(`${what} must be a whole number >= 0, got "${value}"`);
  return n;
};

const positive = (what: string) => (value: string): number => {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new PocovidError(`${what} must be a number > 0, got "${value}"`);
  return n;
};

const nonNegative = (what: string) => (value: string): number => {
  const n = Number(value);
  if (!(n >= 0) || !Number.isFinite(n)) throw new PocovidError(`${what} must be a number >= 0, got "${value}"`);
  return n;
};

function parseMethods(value: string): ExplainMethod[] | 'all' {
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.includes('all')) return 'all';
  for (const n of names) {
    if (!(EXPLAIN_METHODS as readonly string[]).includes(n)) throw new PocovidError(`unknown method "${n}"; valid: ${[...EXPLAIN_METHODS, 'all'].join(', ')}`);
  }
  return names as ExplainMethod[];
}

function parseFill(value: string): OcclusionFill {
  if (value === 'mean' || value === 'zero' || value === 'black') return value;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new PocovidError(`--occlusion-fill must be mean, zero, black or a number, got "${value}"`);
  return n;
}

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
    .option('--fold <k>', 'fold whose model (and test frames) to use; default: the lowest fold', int('--fold'))
    .option('--method <list>', `comma-separated: ${EXPLAIN_METHODS.join(', ')} or all`, parseMethods, 'all' as const)
    .requiredOption('--out <dir>', 'output folder: index.html, maps/, explanations.json, uncertainty.csv')
    .option('--mc-passes <n>', 'MC-dropout passes (0 = none)', int('--mc-passes'), 20)
    .option('--seed <n>', 'seed of the MC-dropout masks', int('--seed'), 0)
    .option('--limit <n>', 'at most this many test videos/images (0 = all)', int('--limit'), 0)
    .option('--occlusion-patch <px>', 'occlusion patch side (default: input side / 7)', int('--occlusion-patch'))
    .option('--occlusion-stride <px>', 'occlusion stride (default: the patch side; smaller = overlapping patches, slower)', int('--occlusion-stride'))
    .option('--occlusion-fill <fill>', 'mean, zero, black or a number (network-input units)', parseFill, 'mean' as OcclusionFill)
    .option('--occlusion-batch <n>', 'occluded copies per forward pass', int('--occlusion-batch'), 16)
    .addOption(runtimeOption('plain forward passes (probabilities, occlusion); gradient maps and MC dropout use TF.js'))
    .option('--fps <n>', 'frames per second sampled from videos', Number, 3)
    .option('--max-frames <n>', 'at most this many frames per video', int('--max-frames'), 30)
    .action(async (files: string[], o: {
      run: string; fold?: number; method: ExplainMethod[] | 'all'; out: string; mcPasses: number; seed: number; limit: number;
      occlusionPatch?: number; occlusionStride?: number; occlusionFill: OcclusionFill; occlusionBatch: number; fps: number; maxFrames: number; runtime: RuntimeChoice;
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
        log,
      });
      const frames = result.items.reduce((n, i) => n + i.frames.length, 0);
      console.log(`explained ${result.items.length} item(s), ${frames} frame(s) with ${result.methods.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s → ${result.index}`);
    });

  cmd
    .command('classes')
    .description('one picture per class by gradient ascent on the class score (grey updates unless --color)')
    .requiredOption('--run <dir>', 'training run or model folder')
    .option('--fold <k>', 'fold whose model to use; default: the lowest fold', int('--fold'))
    .requiredOption('--out <dir>', 'output folder')
    .option('--color', 'unconstrained colour updates (for comparison)')
    .option('--steps <n>', 'gradient-ascent steps', int('--steps'), 100)
    .option('--seed <n>', 'seed of the start noise and jitter', int('--seed'), 0)
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
    .option('--steps <n>', 'gradient-descent steps', int('--steps'), 200)
    .option('--step-size <x>', 'mean absolute pixel change per step at the start ([0,1] units; decays to a tenth)', positive('--step-size'), 0.01)
    .option('--tv <w>', 'weight of the total-variation smoothing', nonNegative('--tv'), 20)
    .option('--blur-every <n>', 'blur the picture (3×3) every n steps; 0 = never', int('--blur-every'), 4)
    .option('--color', 'unconstrained colour updates (default: grey)')
    .option('--seed <n>', 'seed of the start noise', int('--seed'), 0)
    .option('--limit <n>', 'test videos/images to invert when no files are given', int('--limit'), 4)
    .option('--fps <n>', 'frames per second sampled from videos', Number, 3)
    .option('--max-frames <n>', 'at most this many frames per video', int('--max-frames'), 30)
    .action(async (files: string[], o: {
      run: string; fold?: string; layer: string; out: string; steps: number; stepSize: number; tv: number; blurEvery: number; color?: boolean; seed: number; limit: number; fps: number; maxFrames: number;
    }) => {
      await initEngine();
      const started = Date.now();
      const result = await renderInversions({
        run: o.run,
        folds: o.fold?.split(',').map((f) => int('--fold')(f.trim())),
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
    .option('--fold <k>', 'fold; default: the lowest fold', int('--fold'))
    .option('--seed <n>', 'seed of the embedding', int('--seed'), 0)
    .addOption(runtimeOption('feature extraction'))
    .action(async (o: { run: string; out: string; method: EmbeddingMethod; fold?: number; seed: number; runtime: RuntimeChoice }) => {
      await initEngine();
      const result = await renderEmbedding({ run: o.run, fold: o.fold, out: o.out, method: o.method, seed: o.seed, runtime: o.runtime, log });
      console.log(`wrote ${result.scatter} and ${result.thumbnails} (${result.points.length} frames)`);
    });
}
