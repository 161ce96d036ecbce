// `pocovid robustness`: per perturbation, the share of frame and video labels that flip and how far
// the top probability moves, each test frame classified by its own fold's model.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { VIDEO_AGGREGATIONS, type VideoAggregation } from '../eval/types.js';
import { RUNTIME_CHOICES, type RuntimeChoice } from '../onnx/runtime.js';
import { cleanCheckWarning, PERTURBATIONS, runRobustness } from '../robustness/index.js';

interface RobustnessCliOptions {
  run: string;
  data?: string;
  folds?: number[];
  perturbations?: string;
  source?: string;
  seed: number;
  runtime: RuntimeChoice;
  videoAgg: VideoAggregation;
  batchSize: number;
  mirrorAverage?: boolean;
  out?: string;
  plots: boolean;
  json?: boolean;
  quiet?: boolean;
}

function folds(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
  const numbers = parts.map(Number);
  if (parts.length === 0 || numbers.some((n) => !Number.isInteger(n) || n < 0)) throw new InvalidArgumentError(`"${value}": use fold numbers, e.g. 0,1,2`);
  return numbers;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a non-negative integer`);
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return n;
}

const rate = (v: number | null): string => (v === null ? '–' : `${(100 * v).toFixed(1)}%`);

export function register(program: Command): void {
  program
    .command('robustness')
    .description('how stable the decisions are: each test frame of each fold through that fold\'s model, clean and perturbed (noise, JPEG, resize kernels, shift, gain, H.264); writes robustness.json, robustness.md, plots/ and config.json')
    .requiredOption('--run <dir>', 'cross-validation run (fold-<k>/model and fold-<k>/predictions.csv), or a single-fold training run')
    .option('--data <dataset>', 'the dataset the run was trained on (default: the one its config.json names)')
    .option('--folds <list>', 'only these folds, comma-separated', folds)
    .option('--perturbations <list>', `comma-separated, default all: ${PERTURBATIONS.map((p) => p.name).join(', ')}`)
    .option('--source <dir>', 'the folder `data build` read, for the resize perturbations from native-size frames (default: found from dataset.json; without it they go down and up from the stored frame)')
    .option('--seed <n>', 'seed of the random perturbations (noise)', nonNegativeInt, 0)
    .addOption(new Option('--runtime <engine>', 'forward passes on ONNX Runtime (ort), TF.js (tfjs), or ort where it loads (auto)').choices([...RUNTIME_CHOICES]).default('auto'))
    .addOption(new Option('--video-agg <mode>', 'video decision: mean probability or majority vote, as in evaluate').choices([...VIDEO_AGGREGATIONS]).default('mean'))
    .option('--batch-size <n>', 'frames per forward pass', positiveInt, 16)
    .option('--mirror-average', "score every frame by the mean of its own and its mirror image's probabilities (what test-time flip averaging would do; the clean check then differs from predictions.csv)")
    .option('--out <dir>', 'output folder (default: <run>/robustness)')
    .option('--no-plots', 'write robustness.json, robustness.md and config.json only')
    .option('--json', 'print robustness.json to stdout instead of the table: {"perturbations": [{"name", "frameFlipRate", "videoFlipRate", "meanTopProbChange", ...}], ...}')
    .option('--quiet', 'no progress output')
    .action(async (o: RobustnessCliOptions) => {
      const { report, written, outDir } = await runRobustness({
        run: o.run,
        data: o.data,
        folds: o.folds,
        perturbations: o.perturbations === undefined ? undefined : [o.perturbations],
        source: o.source,
        seed: o.seed,
        runtime: o.runtime,
        videoAggregation: o.videoAgg,
        batchSize: o.batchSize,
        mirrorAverage: o.mirrorAverage,
        out: o.out,
        plots: o.plots,
        quiet: o.quiet || o.json,
      });
      for (const s of report.skipped) console.error(`skipped ${s.source}${s.perturbation ? ` (${s.perturbation})` : ''}: ${s.reason}`);
      const warning = cleanCheckWarning(report);
      if (warning) console.error(`warning: ${warning}`);
      if (o.json) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        return;
      }
      console.log(`${report.frames} test frames, ${report.videos} videos and images, folds ${report.folds.map((f) => f.fold).join(',')}`);
      for (const p of report.perturbations) {
        const target = p.target === null ? '' : p.target.met ? '  target met' : `  target missed (${p.target.missed.join('; ')})`;
        console.log(`${p.name.padEnd(16)} frames ${rate(p.frameFlipRate).padStart(6)} flipped, videos ${rate(p.videoFlipRate).padStart(6)} flipped, top-prob change mean ${p.meanTopProbChange?.toFixed(4) ?? '–'}${target}`);
      }
      console.log(`wrote ${written.markdown}, ${written.json}, ${written.frames}, ${written.config}${written.plots.length ? ` and ${outDir}/plots/robustness.svg|png` : ''}`);
    });
}
