// Writes an evaluation to a folder: report.json, report.md and plots/*.svg|png, all atomically.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { BadInputError, UnknownChoiceError } from '../errors.js';
import { renderConfusionMatrix, renderFoldBars, renderHistory, renderPr, renderRoc } from '../plots/charts.js';
import { readHistoryJsonl } from '../plots/history.js';
import type { HistoryEntry } from '../plots/charts.js';
import { writeFileAtomicSync } from '../util/atomic.js';
import { readJsonFile } from '../util/json_file.js';
import { readManifest } from '../data/manifest.js';
import { readPredictionsCsv, type PredictionsTable } from './csv.js';
import { checkPredictionsCover, runCoverage } from './pool_check.js';
import { evaluatePredictions, type Evaluation } from './evaluate.js';
import { learnedVideoReport } from './learned_video.js';
import { formatReportMarkdown, type MarkdownOptions } from './markdown.js';
import { reportHtmlPage } from './markdown_html.js';
import { worstErrors } from './worst_errors.js';
import { renderErrorFigures } from '../explain/error_figures.js';
import { applyBinaryTask, restrictClasses, type TaskTable } from './tasks.js';
import { VIDEO_AGGREGATIONS, type Report, type VideoAggregation } from './types.js';
import { foldCalibrations } from './run_calibrations.js';

export interface WriteReportOptions {
  title?: string;
  /** Facts about the run (model, protocol, wall time, images/s...): stored in report.json as "extra" and shown in report.md. */
  extra?: Record<string, unknown>;
  /** Markdown appended to report.md. */
  notes?: string;
  /** Training histories to plot, e.g. one per fold. */
  histories?: { label: string; entries: HistoryEntry[] }[];
  /** Skip the charts (report.json, report.md and report.html only). */
  plots?: boolean;
  /** The worst errors, with their pictures (relative to the folder) when made. */
  errors?: MarkdownOptions['errors'];
  /** Explanation galleries to link (relative to the folder). */
  galleries?: MarkdownOptions['galleries'];
}

export interface WrittenReport {
  reportJson: string;
  reportMd: string;
  /** The same report as a page that opens offline from the file system. */
  reportHtml: string;
  /** Plot base names (no extension) to paths relative to the folder, PNG. */
  plots: Record<string, string>;
}

/** The report without the plotting-only curves: what report.json holds. */
function reportForJson(report: Report | Evaluation): Report {
  const { curves: _curves, ...rest } = report as Evaluation;
  return rest;
}

async function renderPlots(dir: string, report: Evaluation | Report, histories: WriteReportOptions['histories']): Promise<Record<string, string>> {
  const plots: Record<string, string> = {};
  const plotDir = join(dir, 'plots');
  const add = async (name: string, render: (base: string) => Promise<unknown>): Promise<void> => {
    await render(join(plotDir, name));
    plots[name] = `plots/${name}.png`;
  };
  const curves = 'curves' in report ? report.curves : undefined;
  for (const level of ['frame', 'video'] as const) {
    const m = report[level];
    const unit = level === 'frame' ? 'frames' : 'videos';
    await add(`${level}-confusion-counts`, (b) => renderConfusionMatrix(m.confusionMatrix, m.classes, b, { title: `Confusion matrix, ${unit} (counts)` }));
    await add(`${level}-confusion-normalized`, (b) => renderConfusionMatrix(m.confusionMatrix, m.classes, b, { normalize: true, title: `Confusion matrix, ${unit} (row-normalised)` }));
    if (curves) {
      await add(`${level}-roc`, (b) => renderRoc(curves[level].roc, m.classes, b, `ROC, ${unit} (one-vs-rest)`));
      await add(`${level}-pr`, (b) => renderPr(curves[level].pr, m.classes, b, `Precision-recall, ${unit} (one-vs-rest)`));
    }
  }
  if (report.folds.length > 1) {
    const scores = report.folds.flatMap((f, i) => [
      { fold: report.task.folds[i]!, level: 'frame', value: f.balancedAccuracy },
      ...(report.videoFolds[i] ? [{ fold: report.task.folds[i]!, level: 'video', value: report.videoFolds[i]!.balancedAccuracy }] : []),
    ]);
    await add('folds-balanced-accuracy', (b) => renderFoldBars(scores, b));
  }
  for (const h of histories ?? []) {
    if (h.entries.length === 0) continue;
    const name = `history-${h.label.replace(/[^A-Za-z0-9_-]+/g, '_')}`;
    await add(name, (b) => renderHistory(h.entries, b, `Training history (${h.label})`));
  }
  return plots;
}

/** Writes `<dir>/report.json`, `<dir>/report.md` and `<dir>/plots/*.{svg,png}`. */
export async function writeReport(dir: string, report: Evaluation | Report, options: WriteReportOptions = {}): Promise<WrittenReport> {
  const plots = options.plots === false ? {} : await renderPlots(dir, report, options.histories);
  const json = { ...reportForJson(report), ...(options.extra ? { extra: options.extra } : {}) };
  const reportJson = join(dir, 'report.json');
  const reportMd = join(dir, 'report.md');
  const reportHtml = join(dir, 'report.html');
  // JSON.stringify turns the NaN of an undefined mean into null.
  writeFileAtomicSync(reportJson, JSON.stringify(json, null, 2) + '\n');
  const markdown = formatReportMarkdown(report, { title: options.title, plots, extra: options.extra, notes: options.notes, errors: options.errors, galleries: options.galleries });
  writeFileAtomicSync(reportMd, markdown);
  writeFileAtomicSync(reportHtml, reportHtmlPage(markdown, options.title ?? 'Evaluation report'));
  return { reportJson, reportMd, reportHtml, plots };
}

/** history.jsonl in the run folder and in its immediate sub-folders (one per fold in a cv run). */
export function findHistories(runDir: string): { label: string; entries: HistoryEntry[] }[] {
  const found: { label: string; entries: HistoryEntry[] }[] = [];
  const top = join(runDir, 'history.jsonl');
  if (existsSync(top)) found.push({ label: basename(runDir), entries: readHistoryJsonl(top) });
  for (const name of readdirSync(runDir).sort()) {
    const sub = join(runDir, name);
    const file = join(sub, 'history.jsonl');
    if (statSync(sub).isDirectory() && existsSync(file)) found.push({ label: name, entries: readHistoryJsonl(file) });
  }
  return found;
}

export interface EvaluateRunOptions {
  /** Keep only these classes (at least two). */
  classes?: string[];
  /** A binary reduction such as "healthy-vs-disease". */
  binary?: string;
  videoAggregation?: VideoAggregation;
  /** Output folder; default: the run folder for the full task, `<run>/tasks/<task>` for a reduction. */
  outDir?: string;
  title?: string;
  extra?: Record<string, unknown>;
  notes?: string;
  plots?: boolean;
  /** Coverage of the prediction sets (default: each fold calibration's own). */
  coverage?: number;
  /** How many worst errors the report lists (default 8; 0 = none). */
  worstErrors?: number;
}

/**
 * Explanation galleries (`pocovid explain` output: index.html beside explanations.json) in the
 * folder and the folders below it, two levels deep, as links relative to `from`.
 */
export function findGalleries(runDir: string, from: string): { label: string; href: string }[] {
  const found: { label: string; href: string }[] = [];
  const visit = (dir: string, depth: number): void => {
    if (existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'explanations.json'))) {
      const href = relative(from, join(dir, 'index.html')).split(sep).join('/');
      found.push({ label: relative(runDir, dir).split(sep).join('/') || basename(dir), href });
    }
    if (depth === 0) return;
    for (const name of readdirSync(dir).sort()) {
      const sub = join(dir, name);
      if (!name.startsWith('.') && statSync(sub).isDirectory()) visit(sub, depth - 1);
    }
  };
  if (existsSync(runDir)) visit(runDir, 2);
  return found;
}

function readRunConfig(runDir: string): Record<string, unknown> | undefined {
  const file = join(runDir, 'config.json');
  if (!existsSync(file)) return undefined;
  const value = readJsonFile(file, { what: 'the run\'s configuration' });
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

/**
 * A report must cover every frame the run predicted: when the run's dataset is still where
 * config.json says, its predictions are checked against the manifest (see pool_check.ts).
 */
function checkRunPredictions(runDir: string, config: Record<string, unknown> | undefined, table: PredictionsTable, file: string): void {
  const coverage = runCoverage(config);
  if (!coverage) return;
  const candidates = isAbsolute(coverage.data) ? [coverage.data] : [resolve(coverage.data), resolve(runDir, coverage.data)];
  const manifest = candidates.map((d) => join(d, 'manifest.csv')).find((f) => existsSync(f));
  if (!manifest) {
    process.stderr.write(`note: the run's dataset ${coverage.data} is not found; ${file} is evaluated without checking it against its manifest\n`);
    return;
  }
  const expected = readManifest(manifest).filter((r) => coverage.folds.includes(r.fold) && table.classes.includes(r.label));
  const what = `frames of fold${coverage.folds.length > 1 ? 's' : ''} ${coverage.folds.join(', ')} in ${manifest}`;
  checkPredictionsCover(table.rows, expected, file, what, 'run cv (or train) again to rewrite it; finished folds are kept');
}

/** Reads `<run>/predictions.csv`, applies the task reduction, evaluates and writes the report. */
export async function evaluateRun(runDir: string, options: EvaluateRunOptions = {}): Promise<{ report: Evaluation; written: WrittenReport; outDir: string }> {
  const predictionsFile = join(runDir, 'predictions.csv');
  if (!existsSync(predictionsFile)) throw new BadInputError(predictionsFile, 'not found; a run folder holds the predictions.csv written by train or cv');
  if (options.videoAggregation && !VIDEO_AGGREGATIONS.includes(options.videoAggregation)) {
    throw new UnknownChoiceError('video aggregation', options.videoAggregation, VIDEO_AGGREGATIONS);
  }
  const config = readRunConfig(runDir);
  const table = readPredictionsCsv(predictionsFile);
  const configClasses = config?.classes;
  if (Array.isArray(configClasses) && configClasses.join(',') !== table.classes.join(',')) {
    throw new BadInputError(predictionsFile, `probability columns (${table.classes.join(', ')}) do not match the classes of config.json (${configClasses.join(', ')})`);
  }
  checkRunPredictions(runDir, config, table, predictionsFile);
  let task: TaskTable = { classes: table.classes, rows: table.rows, description: table.classes.join(' vs ') };
  let taskName: string | undefined;
  if (options.classes && options.classes.length > 0) {
    task = restrictClasses(task.rows, task.classes, options.classes);
    taskName = task.classes.join('-vs-');
  }
  if (options.binary) {
    task = applyBinaryTask(options.binary, task.rows, task.classes);
    taskName = taskName ? `${taskName}_${options.binary}` : options.binary;
  }
  // Prediction sets are calibrated on the model's own classes: a reduced task has none.
  const calibrations = taskName ? new Map() : foldCalibrations(runDir);
  const report = evaluatePredictions(task.rows, task.classes, {
    videoAggregation: options.videoAggregation,
    description: task.description,
    ...(calibrations.size > 0 ? { conformal: { calibrations, coverage: options.coverage } } : {}),
  });
  // The learned video rule's queries were fitted on the full task's training videos.
  const learned = taskName ? undefined : learnedVideoReport(runDir, task.rows, task.classes);
  if (learned) report.learnedVideo = learned;
  const outDir = options.outDir ?? (taskName ? join(runDir, 'tasks', taskName) : runDir);
  const model = typeof config?.model === 'string' ? config.model : undefined;
  const title = options.title ?? `Evaluation of ${basename(runDir)}${model ? ` (${model})` : ''}${taskName ? `: ${task.description}` : ''}`;
  // Pictures of the worst errors come from the fold models, which know only the full task's classes.
  const errors = worstErrors(task.rows, task.classes, options.worstErrors ?? 8);
  const pictures = options.plots !== false && !taskName && errors.length > 0;
  const written = await writeReport(outDir, report, {
    title,
    extra: options.extra,
    notes: options.notes,
    plots: options.plots,
    histories: taskName ? [] : findHistories(runDir),
    errors: pictures ? await renderErrorFigures(runDir, errors, outDir) : { entries: errors },
    galleries: findGalleries(runDir, outDir),
  });
  return { report, written, outDir };
}
