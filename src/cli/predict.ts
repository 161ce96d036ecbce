// `pocovid predict`: parse options, run the inference pipeline over files and folders (or exams),
// print results.
import { Command, Option } from 'commander';
import { PocovidError } from '../errors.js';
import { createPipeline, PRECISIONS, RUNTIMES, type Pipeline, type Precision } from '../infer/pipeline.js';
import type { RuntimeChoice } from '../onnx/runtime.js';
import { collectInputs } from '../media/inputs.js';
import { examLines, examsFromFolders, examsFromMapping, examsToCsv, examSummaryLine, predictExams, type ExamInputs } from '../infer/predict_exams.js';
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
  exam?: boolean;
  examMap?: string;
}

export function register(program: Command): void {
  program
    .command('predict')
    .description(
      'classify images (png, jpg, bmp, webp, tif) and videos (mp4, avi, mov, gif, mpeg, m4v, webm, mkv); folders are searched recursively. ' +
        'A file that cannot be read is reported (stderr, and as {file, error} in JSON/CSV) and the rest go on. ' +
        'Files in those folders that are not images or videos are listed as skipped. ' +
        'With a calibrated model each result carries its conformal prediction set, and the text line says when it cannot decide. ' +
        'With --exam or --exam-map the files are zones of exams (one per patient): each zone is decided, then the exam by the mean of its diagnosed zones\' probabilities. ' +
        'Exit code 0 when at least one file was read (diagnosed, or refused by the not-ultrasound guard), 1 when none could be read. Research use only, not a diagnostic device.',
    )
    .argument('[paths...]', 'image or video files, or folders (with --exam: one folder per exam)')
    .requiredOption('--model <dir>', 'exported model folder (pocovid.json) or a training run (ensemble of its folds)')
    .option('--fold <k>', 'with a run: use this fold only', integer(0))
    .addOption(new Option('--json', 'print a JSON array of results (with --exam: one object per exam, its zones inside)').conflicts('csv'))
    .addOption(new Option('--csv', 'print CSV (one row per file; with --exam: per exam)').conflicts('json'))
    .option('--heatmaps <dir>', 'write a Grad-CAM overlay PNG per file into this folder')
    .option('--fps <n>', 'video frames sampled per second', fps, 3)
    .option('--max-frames <n>', 'at most this many frames per video', integer(1), 30)
    .addOption(new Option('--aggregate <how>', 'video decision: mean probability or majority vote of frames').choices(['mean', 'vote']).default('mean'))
    .option('--mc-dropout <n>', 'Monte-Carlo dropout passes for the uncertainty (0 = off)', integer(0, 1000), 0)
    .option('--seed <n>', 'seed of the MC-dropout masks', seed, 0)
    .addOption(new Option('--runtime <engine>', 'forward passes on ONNX Runtime (ort), TF.js (tfjs), or ort where it loads (auto); Grad-CAM and MC dropout use TF.js').choices([...RUNTIMES]).default('auto'))
    .addOption(new Option('--precision <p>', 'fp32, or int8: the members export --format onnx --int8 wrote (ONNX Runtime; see README for its accuracy)').choices([...PRECISIONS]).default('fp32'))
    .option('--no-guard', 'diagnose even inputs that do not look like lung ultrasound (the guard is on by default)')
    .option('--exam', 'each path is a folder holding one exam: a patient\'s zone images and videos (searched recursively), named by the folder')
    .addOption(new Option('--exam-map <csv>', 'exams from a CSV with the columns file,patient (files relative to the CSV\'s folder; a folder maps all its files); no paths').conflicts('exam'))
    .action(async (paths: string[], o: PredictOptions) => {
      if (o.exam || o.examMap) return predictExamsCommand(paths, o);
      if (paths.length === 0) throw new PocovidError('predict needs files or folders (or --exam-map <csv>)');
      const { files, skipped } = collectInputs(paths);
      for (const file of skipped) console.error(`pocovid: skipped ${file}: not an image or video file name (name it .png, .mp4… to include it)`);
      if (files.length === 0) throw noFilesError(paths);
      const pipeline = await loadPipeline(o);
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

function loadPipeline(o: PredictOptions): Promise<Pipeline> {
  return createPipeline(o.model, { fold: o.fold, runtime: o.runtime, precision: o.precision, mcDropout: o.mcDropout, seed: o.seed, ...(o.guard ? {} : { guard: false }) });
}

/** predict --exam / --exam-map: the exams' zones, then each exam's decision (src/infer/predict_exams.ts). */
async function predictExamsCommand(paths: string[], o: PredictOptions): Promise<void> {
  if (o.aggregate === 'vote') throw new PocovidError('--aggregate vote does not apply to exams: the exam rule averages each zone\'s mean probabilities');
  if (o.examMap && paths.length > 0) throw new PocovidError(`--exam-map names the files; give no paths (got ${paths.join(', ')})`);
  if (!o.examMap && paths.length === 0) throw new PocovidError('predict --exam needs one folder per exam');
  const { exams, skipped }: ExamInputs = o.examMap ? examsFromMapping(o.examMap) : examsFromFolders(paths);
  for (const file of skipped) console.error(`pocovid: skipped ${file}: not an image or video file name (name it .png, .mp4… to include it)`);
  for (const { exam, files } of exams) if (files.length === 0) console.error(`pocovid: exam ${exam}: no image or video files`);
  if (exams.every((e) => e.files.length === 0)) throw noFilesError(o.examMap ? [o.examMap] : paths);
  const pipeline = await loadPipeline(o);
  const streaming = !o.json && !o.csv;
  const outcomes = await predictExams(pipeline, exams, {
    fps: o.fps,
    maxFrames: o.maxFrames,
    heatmaps: o.heatmaps,
    onZone: (zone) => {
      if ('error' in zone) console.error(`pocovid: ${zone.error}`);
    },
    onExam: (exam) => {
      if (streaming) console.log(examLines(exam).join('\n'));
    },
  });
  if (o.json) console.log(JSON.stringify(outcomes, null, 2));
  if (o.csv) process.stdout.write(examsToCsv(outcomes, pipeline.classes));
  await pipeline.dispose();
  const read = outcomes.flatMap((e) => e.zones).filter((z) => !('error' in z)).length;
  (streaming ? console.log : console.error)(examSummaryLine(outcomes, skipped.length));
  process.exitCode = read > 0 ? 0 : 1;
}
