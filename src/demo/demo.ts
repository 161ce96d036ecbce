// `pocovid demo`: the whole path on an embedded default, in a few minutes on a 2-core machine:
// SYNTHETIC phantom videos → dataset → a small grey CNN trained on one fold (validation split by
// patient) → explanations → evaluation report (linking them) → exported model with the in-browser page.
// Nothing here is real patient data; every output says so.
import { join, resolve } from 'node:path';
import { writePhantom } from '../data/phantom.js';
import { buildDataset } from '../data/build.js';
import { trainFold } from '../train/train_fold.js';
import { evaluateRun } from '../eval/report.js';
import { exportRun } from '../infer/export.js';
import { writeJsonAtomicSync } from '../util/atomic.js';

export interface DemoOptions {
  out: string;
  seed?: number;
  epochs?: number;
  /** Input side of the grey CNN (small: the phantom is simple and the demo must be quick). */
  inputSize?: number;
  quiet?: boolean;
  /** Optional extra steps (explanations), given the run folder; kept pluggable so demo stays thin. */
  extraSteps?: { name: string; run(runDir: string, datasetDir: string): Promise<string> }[];
}

export interface DemoResult {
  phantom: string;
  dataset: string;
  run: string;
  report: string;
  /** The same report as a page (opens offline). */
  reportHtml: string;
  model: string;
  page: string;
  extras: Record<string, string>;
  seconds: number;
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const out = resolve(options.out);
  const seed = options.seed ?? 0;
  const log = (line: string) => {
    if (!options.quiet) process.stderr.write(`[demo] ${line}\n`);
  };
  const phantom = join(out, 'phantom-synthetic');
  const dataset = join(out, 'dataset-synthetic');
  const run = join(out, 'run');
  const model = join(out, 'model');

  log(`1/5 writing SYNTHETIC phantom lung-ultrasound videos to ${phantom}`);
  await writePhantom({ out: phantom, perClass: 9, imagesPerClass: 2, seed, size: 128, frames: 8, quiet: options.quiet });

  log(`2/5 building the dataset (frames, patient-grouped folds) in ${dataset}`);
  await buildDataset({ source: phantom, out: dataset, size: 128, folds: 3, seed, fps: 3, maxFrames: 30, quiet: options.quiet });

  log(`3/5 training grayscale_cnn on fold 0 (validation split by patient) in ${run}`);
  const side = options.inputSize ?? 64;
  const result = await trainFold(
    { data: dataset, model: 'grayscale_cnn', fold: 0, out: run, epochs: options.epochs ?? 20, batchSize: 16, lr: 1e-3, seed, inputSize: [side, side] },
    { quiet: options.quiet },
  );

  // The explanation steps run first, so that the report (report.html) links their gallery.
  const extras: Record<string, string> = {};
  for (const step of options.extraSteps ?? []) {
    log(`   ${step.name}`);
    extras[step.name] = await step.run(run, dataset);
  }

  log('4/5 evaluating (frame, video and patient level, prediction sets, report.html)');
  const { written } = await evaluateRun(run, {
    title: 'POCOVID demo on SYNTHETIC phantom data (not patient data)',
    extra: { data: 'synthetic phantom', trainSeconds: result.trainSeconds, trainImgPerSec: result.trainImgPerSec },
  });

  log(`5/5 exporting the model with the in-browser page to ${model}`);
  const exported = await exportRun(run, model);
  const seconds = (Date.now() - started) / 1000;
  const summary: DemoResult = {
    phantom,
    dataset,
    run,
    report: written.reportMd,
    reportHtml: written.reportHtml,
    model,
    page: exported.pageFiles.includes('index.html') ? join(model, 'index.html') : '',
    extras,
    seconds,
  };
  writeJsonAtomicSync(join(out, 'demo.json'), { ...summary, seed, synthetic: true });
  return summary;
}
