// The robustness report: robustness.json (what --json prints), robustness.md (the tables),
// frames.csv (every frame's probabilities, clean and perturbed), plots/robustness.svg|png and
// config.json (the resolved options and tool versions), all written atomically into one folder.
import { join } from 'node:path';
import { findFfmpeg } from '../media/ffmpeg.js';
import { H264_DEFAULTS } from '../media/h264.js';
import { renderRobustness } from '../plots/robustness.js';
import { toolVersions } from '../train/versions.js';
import { writeFileAtomic } from '../util/atomic.js';
import { FRAMES_CSV, formatFramesCsv } from './frames_csv.js';
import type { RobustnessMeasurement, SkippedSource } from './measure.js';
import { NATIVE_MATCH_TOLERANCE } from './native.js';
import { DOWN_UP_FACTOR } from './perturbations.js';
import { checkTargets, pct, ROBUSTNESS_TARGETS, summarisePerturbation, type PerturbationSummary, type PredictionSetOf, type TargetCheck } from './stats.js';
import { predictionSetOf } from '../decision/prediction_set.js';

export interface RobustnessReport {
  run: string;
  data: string;
  classes: string[];
  seed: number;
  videoAggregation: string;
  /** Every frame scored by the mean of its own and its mirror image's probabilities (--mirror-average). */
  mirrorAverage: boolean;
  folds: { fold: number; runtime: string; frames: number }[];
  /** Test frames and videos measured (clean). */
  frames: number;
  videos: number;
  cleanCheck: RobustnessMeasurement['cleanCheck'];
  native: RobustnessMeasurement['native'];
  targets: typeof ROBUSTNESS_TARGETS;
  perturbations: (PerturbationSummary & { target: TargetCheck | null })[];
  skipped: SkippedSource[];
}

export function buildRobustnessReport(m: RobustnessMeasurement): RobustnessReport {
  const setOf = predictionSets(m.folds, m.classes);
  return {
    run: m.run,
    data: m.data,
    classes: m.classes,
    seed: m.seed,
    videoAggregation: m.videoAggregation,
    mirrorAverage: m.mirrorAverage,
    folds: m.folds.map(({ fold, runtime, frames }) => ({ fold, runtime, frames })),
    frames: m.records.length,
    videos: new Set(m.records.map((r) => r.source)).size,
    cleanCheck: m.cleanCheck,
    native: m.native,
    targets: ROBUSTNESS_TARGETS,
    perturbations: m.perturbations.map((p) => {
      const summary = summarisePerturbation(p, m.records, m.classes, m.videoAggregation, setOf);
      return { ...summary, target: checkTargets(summary) };
    }),
    skipped: m.skipped,
  };
}

/** Each fold's prediction sets from its own calibration, as predict shows them; undefined unless every fold has one. */
function predictionSets(folds: RobustnessMeasurement['folds'], classes: readonly string[]): PredictionSetOf | undefined {
  if (folds.length === 0 || folds.some((f) => !f.conformal)) return undefined;
  const byFold = new Map(folds.map((f) => [f.fold, f.conformal!]));
  return (fold, level, probs) => predictionSetOf(byFold.get(fold)!, level, probs, classes)?.classes;
}

/**
 * Largest difference between a clean probability computed here and the run's predictions.csv that
 * still counts as the same computation (ONNX Runtime against TF.js differ by ~1e-6).
 */
export const CLEAN_CHECK_TOLERANCE = 1e-3;

/** A warning when the clean pass does not reproduce the run's own test predictions. */
export function cleanCheckWarning(report: Pick<RobustnessReport, 'cleanCheck'> & Partial<Pick<RobustnessReport, 'mirrorAverage'>>): string | undefined {
  const c = report.cleanCheck;
  if (c.maxAbsDifference <= CLEAN_CHECK_TOLERANCE) return undefined;
  if (report.mirrorAverage) {
    return `with --mirror-average the clean frames' probabilities differ from the run's predictions.csv (made without the mirror image) by up to ${c.maxAbsDifference.toFixed(3)}, the same label on ${pct(c.labelAgreement)}`;
  }
  return `the clean frames' probabilities differ from the run's predictions.csv by up to ${c.maxAbsDifference.toFixed(3)} (same label on ${pct(c.labelAgreement)}): the frames or their preprocessing are not those the run was evaluated on`;
}

const num = (v: number | null, digits = 4): string => (v === null ? '–' : v.toFixed(digits));
const share = (count: number, of: number, rate: number | null): string => (rate === null ? '–' : `${count}/${of} (${pct(rate)})`);

function origin(p: PerturbationSummary): string {
  const { native, stored } = p.pixelsFrom;
  if (native > 0 && stored > 0) return `native ${native}, stored ${stored}`;
  return native > 0 ? 'native' : 'stored';
}

/** The report's tables in Markdown. */
export function formatRobustnessMarkdown(report: RobustnessReport): string {
  const lines = [
    '# Decision stability under perturbations',
    '',
    `Run \`${report.run}\`, dataset \`${report.data}\`: ${report.frames} test frames from ${report.videos} videos and images, each classified by the model of its own fold (folds ${report.folds.map((f) => f.fold).join(', ')}; ${[...new Set(report.folds.map((f) => f.runtime))].join(', ')}). Video decision: ${report.videoAggregation} over its frames. Seed ${report.seed}.`,
    '',
    '| perturbation | frames | frame labels flipped | videos | video labels flipped | of those, the class was in the clean set | video sets changed | top-prob. change: mean | median | p95 | max | mean \\|Δ pixel\\| (grey levels) | perturbed from | target (issue 15) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const p of report.perturbations) {
    const target = p.target === null ? '–' : p.target.met ? 'met' : `missed: ${p.target.missed.join('; ')}`;
    lines.push(
      `| ${p.name} | ${p.frames} | ${share(p.frameFlips, p.frames, p.frameFlipRate)} | ${p.videos} | ${share(p.videoFlips, p.videos, p.videoFlipRate)} | ${p.flippedVideosInSet ?? '–'} | ${p.videoSetChanges ?? '–'} | ${num(p.meanTopProbChange)} | ${num(p.medianTopProbChange)} | ${num(p.p95TopProbChange)} | ${num(p.maxTopProbChange)} | ${num(p.meanPixelChange, 2)} | ${origin(p)} | ${target} |`,
    );
  }
  lines.push('', 'Accuracy, clean → perturbed (the same frames and videos):', '', '| perturbation | frame accuracy | video accuracy | video top-prob. change: mean | p95 | max |', '|---|---|---|---:|---:|---:|');
  for (const p of report.perturbations) {
    const a = p.accuracy;
    lines.push(`| ${p.name} | ${num(a.frame.clean, 3)} → ${num(a.frame.perturbed, 3)} | ${num(a.video.clean, 3)} → ${num(a.video.perturbed, 3)} | ${num(p.videoTopProbChange.mean)} | ${num(p.videoTopProbChange.p95)} | ${num(p.videoTopProbChange.max)} |`);
  }
  lines.push('', 'Perturbations:', '');
  for (const p of report.perturbations) lines.push(`- \`${p.name}\`: ${p.description}.`);
  const t = report.targets;
  lines.push(
    '',
    `Top-probability change: |p'(ĉ) − p(ĉ)| for the class ĉ decided on the clean frame. Prediction sets (the two set columns): each video's from its fold's own calibration at its coverage, video level (frame level for a still image); a flipped video whose clean set already held the class it flipped to was told "cannot decide between them" either way, and a set that does not change is the same answer. Targets (issue 15, for ${t.perturbations.join(', ')}): at most ${pct(t.maxFrameFlipRate)} of frame labels and ${t.maxVideoFlipRate} video labels flip, mean top-probability change under ${t.maxMeanTopProbChange}.`,
    '',
  );
  const n = report.native;
  if (n.dir) {
    lines.push(`Native frames for the resize perturbations: re-decoded from \`${n.dir}\` (data build's resize of them gives the stored frames to within ${n.worstMismatch.toFixed(2)} grey levels on average; tolerance ${NATIVE_MATCH_TOLERANCE}).${n.fallbacks.length ? ` ${n.fallbacks.length} source(s) fell back to the stored frame (down ×${DOWN_UP_FACTOR} and up): see robustness.json.` : ''}`);
  } else {
    lines.push(`Native frames unavailable (${n.unavailable}): the resize perturbations went down ×${DOWN_UP_FACTOR} and back up from the stored frame, which is harsher than one resize from the native frame.`);
  }
  const c = report.cleanCheck;
  lines.push('', `Clean frames against the run's predictions.csv: ${c.frames} frames, same label on ${pct(c.labelAgreement)}, largest probability difference ${c.maxAbsDifference.toExponential(1)}.`);
  const warning = cleanCheckWarning(report);
  if (warning) lines.push('', `**Warning**: ${warning}.`);
  if (report.skipped.length) {
    lines.push('', `Skipped (the rest went on): ${report.skipped.length}`, '');
    for (const s of report.skipped) lines.push(`- ${s.source}${s.perturbation ? ` (${s.perturbation})` : ''}: ${s.reason}`);
  }
  return lines.join('\n') + '\n';
}

export interface WrittenRobustness {
  json: string;
  markdown: string;
  frames: string;
  config: string;
  plots: string[];
}

export interface RobustnessRunConfig {
  runtime: string;
  source: string | undefined;
  batchSize: number;
  mirrorAverage: boolean;
  perturbations: { name: string; description: string }[];
}

/** Writes the report, its tables, the frames it was counted from, its chart and the resolved config into `outDir`. */
export async function writeRobustnessOutputs(
  report: RobustnessReport,
  records: RobustnessMeasurement['records'],
  config: RobustnessRunConfig,
  outDir: string,
  options: { plots?: boolean } = {},
): Promise<WrittenRobustness> {
  const written: WrittenRobustness = {
    json: join(outDir, 'robustness.json'),
    markdown: join(outDir, 'robustness.md'),
    frames: join(outDir, FRAMES_CSV),
    config: join(outDir, 'config.json'),
    plots: [],
  };
  let ffmpeg: string;
  try {
    const found = findFfmpeg();
    ffmpeg = `${found.version} (${found.origin}: ${found.ffmpeg})`;
  } catch {
    ffmpeg = 'not found';
  }
  const resolved = {
    kind: 'robustness',
    run: report.run,
    data: report.data,
    out: outDir,
    folds: report.folds.map((f) => f.fold),
    runtime: config.runtime,
    runtimes: Object.fromEntries(report.folds.map((f) => [f.fold, f.runtime])),
    perturbations: config.perturbations,
    seed: report.seed,
    videoAggregation: report.videoAggregation,
    batchSize: config.batchSize,
    source: config.source ?? null,
    nativeSource: report.native.dir,
    downUpFactor: DOWN_UP_FACTOR,
    nativeMatchTolerance: NATIVE_MATCH_TOLERANCE,
    h264: H264_DEFAULTS,
    targets: ROBUSTNESS_TARGETS,
    tools: { ...toolVersions(), ffmpeg },
    createdAt: new Date().toISOString(),
  };
  await writeFileAtomic(written.config, JSON.stringify(resolved, null, 2) + '\n');
  await writeFileAtomic(written.json, JSON.stringify(report, null, 2) + '\n');
  await writeFileAtomic(written.markdown, formatRobustnessMarkdown(report));
  await writeFileAtomic(written.frames, formatFramesCsv(records, report.classes));
  if (options.plots !== false) {
    const chart = await renderRobustness(report.perturbations, ROBUSTNESS_TARGETS, join(outDir, 'plots', 'robustness'));
    written.plots.push(chart.svgPath, chart.pngPath);
  }
  return written;
}
