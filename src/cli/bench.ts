// `pocovid bench`: throughput and memory per model and runtime on this machine.
import { Option, type Command } from 'commander';
import { measureModel } from '../bench/measure.js';
import { benchRobustness, formatRobustnessBench } from '../bench/robustness.js';
import { CHILD_FLAG, formatBenchTable, runBench } from '../bench/run.js';
import type { Runtime } from '../onnx/runtime.js';
import { integer, pictureSize, someOf } from './options.js';

const positiveInt = integer(1);
/** ort and/or tfjs: 'auto' is not a runtime one can measure. */
const runtimes = someOf<Runtime>(['ort', 'tfjs']);

interface BenchCliOptions {
  json?: boolean;
  models?: string;
  runtimes?: Runtime[];
  repeats: number;
  inputSize?: [number, number];
  cv?: boolean;
  cvEpochs: number;
  robustness?: string;
  robustnessData?: string;
  benchChild?: string;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('measure per model and runtime: inference img/s (batch 1 and 8; int8 too on ort), feature-cache img/s, training-step img/s, threads, peak memory; --cv adds the wall time of `cv` on a fixed phantom dataset')
    .option('--json', 'print JSON: {"threads", "machine", "results": [{"model", "runtime", "threads", "inferenceImgPerSec", "inferenceBatch1ImgPerSec", "int8InferenceImgPerSec", "int8InferenceBatch1ImgPerSec", "featureCacheImgPerSec", "trainImgPerSec", "trainCachedImgPerSec", "peakRssMb", ...}], "cv"?: [...]}')
    .option('--models <list>', 'comma-separated model names (default: all)')
    .option('--runtimes <list>', 'comma-separated: ort, tfjs (default: tfjs, and ort where it loads)', runtimes)
    .option('--repeats <n>', 'timed repetitions per measurement', positiveInt, 3)
    .option('--input-size <N|HxW>', 'override every model\'s input size (quick runs)', pictureSize)
    .option('--cv', 'also time `cv` (3 folds) on a fixed phantom dataset: grayscale_cnn at 64², mobilenet_v1 at 224²')
    .option('--cv-epochs <n>', 'epochs of each --cv run', positiveInt, 2)
    .option('--robustness <run>', 'instead: the decision-stability figures of a cv run against issue 15\'s targets (±1 grey level, JPEG 95, resize kernels; see `pocovid robustness`); --json prints its report')
    .option('--robustness-data <dataset>', 'with --robustness: the dataset the run was trained on (default: the one its config.json names)')
    .addOption(new Option(`${CHILD_FLAG} <model>`, 'measure one model and print its JSON line (used by bench itself)').hideHelp())
    .action(async (opts: BenchCliOptions) => {
      if (opts.benchChild) {
        const result = await measureModel(opts.benchChild, { runtime: opts.runtimes?.[0] ?? 'tfjs', repeats: opts.repeats, inputSize: opts.inputSize });
        process.stdout.write(JSON.stringify(result) + '\n');
        return;
      }
      if (opts.robustness) {
        const runtime = opts.runtimes?.length === 1 ? opts.runtimes[0]! : 'auto';
        const report = await benchRobustness({ run: opts.robustness, data: opts.robustnessData, runtime, quiet: opts.json });
        console.log(opts.json ? JSON.stringify(report, null, 2) : formatRobustnessBench(report));
        return;
      }
      const models = opts.models?.split(',').map((m) => m.trim()).filter(Boolean);
      const report = await runBench({
        models,
        runtimes: opts.runtimes,
        repeats: opts.repeats,
        inputSize: opts.inputSize,
        cv: opts.cv ? { epochs: opts.cvEpochs } : undefined,
        onResult: (r) => {
          if (!opts.json) console.error(`${r.model} (${r.runtime}): ${r.inferenceImgPerSec.toFixed(1)} img/s inference, ${r.trainImgPerSec.toFixed(1)} img/s training`);
        },
        onCvResult: (c) => {
          if (!opts.json) console.error(`cv ${c.model} (${c.runtime}): ${c.seconds.toFixed(1)} s`);
        },
      });
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatBenchTable(report));
    });
}
