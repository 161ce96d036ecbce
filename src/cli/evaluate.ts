// `pocovid evaluate`: metrics, report.json/report.md and plots from a run's predictions.csv.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { evaluateRun } from '../eval/report.js';
import { BINARY_TASKS, VIDEO_AGGREGATIONS, type VideoAggregation } from '../eval/types.js';

interface EvaluateCliOptions {
  run: string;
  classes?: string;
  binary?: string;
  videoAgg: VideoAggregation;
  out?: string;
  plots: boolean;
  json?: boolean;
  coverage?: number;
}

function coverageValue(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`"${value}": a coverage is a number between 0 and 1, e.g. 0.9`);
  return n;
}

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('evaluate a run folder: frame and video metrics, per fold and pooled; writes report.json, report.md and plots/')
    .requiredOption('--run <dir>', 'run folder holding predictions.csv (and config.json)')
    .option('--classes <list>', 'comma-separated classes to keep, e.g. covid,pneumonia (other frames dropped, probabilities renormalised)')
    .addOption(new Option('--binary <task>', 'binary reduction').choices([...BINARY_TASKS]))
    .addOption(new Option('--video-agg <mode>', 'video decision: mean probability or majority vote').choices([...VIDEO_AGGREGATIONS]).default('mean'))
    .option('--out <dir>', 'output folder (default: the run folder; <run>/tasks/<task> with --classes or --binary)')
    .option('--coverage <p>', "coverage of the prediction sets (default: each fold model's own)", coverageValue)
    .option('--no-plots', 'write report.json and report.md only')
    .option('--json', 'print report.json to stdout instead of a summary')
    .action(async (opts: EvaluateCliOptions) => {
      const classes = opts.classes?.split(',').map((c) => c.trim()).filter(Boolean);
      const { report, written, outDir } = await evaluateRun(opts.run, {
        classes,
        binary: opts.binary,
        videoAggregation: opts.videoAgg,
        outDir: opts.out,
        plots: opts.plots,
        coverage: opts.coverage,
      });
      if (opts.json) {
        const { curves: _curves, ...json } = report;
        process.stdout.write(JSON.stringify(json, null, 2) + '\n');
        return;
      }
      const f = report.frame;
      const v = report.video;
      console.log(`${report.task.description}: ${report.task.frames} frames, ${report.task.videos} videos, folds ${report.task.folds.join(',')}`);
      console.log(`frame: accuracy ${f.accuracy.toFixed(3)}, balanced ${f.balancedAccuracy.toFixed(3)}, MCC ${f.mcc.toFixed(3)}, AUC macro ${f.auc.macro?.toFixed(3) ?? 'n/a'}`);
      console.log(`video (${report.task.videoAggregation}): accuracy ${v.accuracy.toFixed(3)}, balanced ${v.balancedAccuracy.toFixed(3)}, MCC ${v.mcc.toFixed(3)}, AUC macro ${v.auc.macro?.toFixed(3) ?? 'n/a'}`);
      if (report.patient) {
        const p = report.patient.metrics;
        console.log(`patient (${p.n} exams): accuracy ${p.accuracy.toFixed(3)}, balanced ${p.balancedAccuracy.toFixed(3)}, MCC ${p.mcc.toFixed(3)}`);
      }
      for (const [level, entry] of Object.entries(report.conformal?.levels ?? {})) {
        const s = entry.pooled;
        console.log(
          `sets, ${level === 'patient' ? 'exam' : level} (target ${report.conformal!.coverage}): coverage ${s.coverage.toFixed(3)}, mean size ${s.meanSetSize.toFixed(2)}, decided ${s.singletonRate.toFixed(3)}, accuracy when decided ${Number.isFinite(s.singletonAccuracy) ? s.singletonAccuracy.toFixed(3) : 'n/a'}`,
        );
      }
      console.log(`wrote ${written.reportJson}, ${written.reportMd} and ${Object.keys(written.plots).length} plots under ${outDir}/plots`);
    });
}
