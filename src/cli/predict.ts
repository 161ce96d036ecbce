// `pocovid predict`: parse options, run the inference pipeline over files and folders, print results.
import { Command, Option } from 'commander';
import { createPipeline, PRECISIONS, RUNTIMES, type Precision } from '../infer/pipeline.js';
import type { RuntimeChoice } from '../onnx/runtime.js';
import { collectInputs } from '../media/inputs.js';
import { noFilesError, predictFiles, summaryLine, toCsv, toLine } from '../infer/predict_files.js';
import type { VideoAggregation } from '../decision/combine.js';

import { fps, integer, seed } from './options.js';

interface PredictOptions {
  model: string;
  fold?: number;
  json?: boolean;
  csv?: boolean;
  heatmaps?: string;
  fps: number;
  maxFrames: number;
  aggregate: VideoAggregation;
  mcDropout: number;
  seed: number;
  guard: boolean;
  runtime: RuntimeChoice;
  precision: Precision;
}

export function register(program: Command): void {
  program
    .command('predict')
    .description(
      'classify images (png, jpg, bmp, webp, tif) and videos (mp4, avi, mov, gif, mpeg, m4v, webm, mkv); folders are searched recursively. ' +
        'A file that cannot be read is reported (stderr, and as {file, error} in JSON/CSV) and the rest go on. ' +
        'Files in those folders that are not images or videos are listed as skipped. ' +
        'Exit code 0 when at least one file was read (diagnosed, or refused by the not-ultrasound guard), 1 when none could be read. Research use only, not a diagnostic device.',
    )
    .argument('<paths...>', 'image or video files, or folders')
    .requiredOption('--model <dir>', 'exported model folder (pocovid.json) or a training run (ensemble of its folds)')
    .option('--fold <k>', 'with a run: use this fold only', integer(0))
    .addOption(new Option('--json', 'print a JSON array of results').conflicts('csv'))
    .addOption(new Option('--csv', 'print CSV (one row per file)').conflicts('json'))
    .option('--heatmaps <dir>', 'write a Grad-CAM overlay PNG per file into this folder')
    .option('--fps <n>', 'video frames sampled per second', fps, 3)
    .option('--max-frames <n>', 'at most this many frames per video', integer(1), 30)
    .addOption(new Option('--aggregate <how>', 'video decision: mean probability or majority vote of frames').choices(['mean', 'vote']).default('mean'))
    .option('--mc-dropout <n>', 'Monte-Carlo dropout passes for the uncertainty (0 = off)', integer(0, 1000), 0)
    .option('--seed <n>', 'seed of the MC-dropout masks', seed, 0)
    .addOption(new Option('--runtime <engine>', 'forward passes on ONNX Runtime (ort), TF.js (tfjs), or ort where it loads (auto); Grad-CAM and MC dropout use TF.js').choices([...RUNTIMES]).default('auto'))
    .addOption(new Option('--precision <p>', 'fp32, or int8: the members export --format onnx --int8 wrote (ONNX Runtime; see README for its accuracy)').choices([...PRECISIONS]).default('fp32'))
    .option('--no-guard', 'diagnose even inputs that do not look like lung ultrasound (the guard is on by default)')
    .action(async (paths: string[], o: PredictOptions) => {
      const { files, skipped } = collectInputs(paths);
      for (const file of skipped) console.error(`pocovid: skipped ${file}: not an image or video file name (name it .png, .mp4… to include it)`);
      if (files.length === 0) throw noFilesError(paths);
      const pipeline = await createPipeline(o.model, { fold: o.fold, runtime: o.runtime, precision: o.precision, mcDropout: o.mcDropout, seed: o.seed, ...(o.guard ? {} : { guard: false }) });
      const streaming = !o.json && !o.csv;
      const outcomes = await predictFiles(pipeline, files, {
        fps: o.fps,
        maxFrames: o.maxFrames,
        aggregation: o.aggregate,
        heatmaps: o.heatmaps,
        onResult: (outcome) => {
          if ('error' in outcome) console.error(`pocovid: ${outcome.error}`);
          else if (streaming) console.log(toLine(outcome));
        },
      });
      if (o.json) console.log(JSON.stringify(outcomes, null, 2));
      if (o.csv) process.stdout.write(toCsv(outcomes, pipeline.classes));
      await pipeline.dispose();
      const read = outcomes.filter((x) => !('error' in x)).length;
      // On stderr with --json/--csv, so that stdout stays machine-readable.
      (streaming ? console.log : console.error)(summaryLine(outcomes, skipped.length));
      process.exitCode = read > 0 ? 0 : 1;
    });
}
