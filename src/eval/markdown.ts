// report.md: the tables of the POCOVID-Net paper (per class recall, precision, F1, specificity as
// mean ± std over folds; overall accuracy, balanced accuracy, MCC, AUC), at frame and video level.
import type { WorstError } from './worst_errors.js';
import type { ConformalReport, FoldSummary, MeanStd, Metrics, PatientLevel, Report, SetSummary, VideoAggregation } from './types.js';
import { VIDEO_AGGREGATIONS } from './types.js';

const num = (v: number | null | undefined, digits = 3): string => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits));
const pm = (s: MeanStd | undefined, digits = 3): string => (!s || s.n === 0 || !Number.isFinite(s.mean) ? 'n/a' : `${num(s.mean, digits)} ± ${num(s.std, digits)}`);

const LEARNED_VIDEO_NAME = 'learned attention over frames (fitted on the training folds)';

const VIDEO_DECISION_NAMES: Record<VideoAggregation, string> = {
  mean: 'mean probability',
  vote: 'majority vote',
  top3: 'mean of the 3 most confident frames',
  contiguous: 'longest run of consecutive frames',
};

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

function summaryTable(m: Metrics, s: FoldSummary | null): string {
  const withFolds = s !== null && s.accuracy.n > 1;
  const rows: [string, number | null, MeanStd | undefined][] = [
    ['Accuracy', m.accuracy, s?.accuracy],
    ['Balanced accuracy', m.balancedAccuracy, s?.balancedAccuracy],
    ['MCC', m.mcc, s?.mcc],
    ['AUC (macro, one-vs-rest)', m.auc.macro ?? null, s?.auc.macro],
    ['AUC (micro)', m.auc.micro ?? null, s?.auc.micro],
    ['F1 (macro)', m.macro.f1, s?.macro.f1],
    ['Precision (macro)', m.macro.precision, s?.macro.precision],
    ['Recall (macro)', m.macro.recall, s?.macro.recall],
    ['F1 (weighted)', m.weighted.f1, undefined],
  ];
  return table(
    withFolds ? ['Metric', 'Pooled', `Mean ± std over ${s!.accuracy.n} folds`] : ['Metric', 'Value'],
    rows.map(([name, pooled, folds]) => (withFolds ? [name, num(pooled), folds ? pm(folds) : '–'] : [name, num(pooled)])),
  );
}

function perClassFoldTable(m: Metrics, s: FoldSummary): string {
  return table(
    ['Class', 'Recall (sensitivity)', 'Precision', 'F1-score', 'Specificity', 'AUC', 'Support (per fold)'],
    m.classes.map((c) => {
      const k = s.perClass[c]!;
      return [c, pm(k.recall), pm(k.precision), pm(k.f1), pm(k.specificity), pm(s.auc[c]), pm(k.support, 1)];
    }),
  );
}

function perClassPooledTable(m: Metrics): string {
  return table(
    ['Class', 'Recall (sensitivity)', 'Precision', 'F1-score', 'Specificity', 'AUC', 'AP', 'Support'],
    m.classes.map((c) => {
      const k = m.perClass[c]!;
      return [c, num(k.recall), num(k.precision), num(k.f1), num(k.specificity), num(m.auc[c]), num(m.averagePrecision[c]), String(k.support)];
    }),
  );
}

function confusionTable(m: Metrics): string {
  return table(
    ['true \\ predicted', ...m.classes],
    m.confusionMatrix.map((row, i) => {
      const total = row.reduce((a, b) => a + b, 0);
      return [m.classes[i]!, ...row.map((v) => (total === 0 ? String(v) : `${v} (${((100 * v) / total).toFixed(1)}%)`))];
    }),
  );
}

const pct = (v: number): string => (Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : 'n/a');

function patientSection(p: PatientLevel, folds: number[]): string[] {
  const out = [
    '## Patient level (exams)',
    '',
    `${p.metrics.n} exams. Rule: every zone (video or image) of a patient weighs the same; the exam's probabilities are the mean of its zones' mean probabilities, its class their arg-max (src/eval/exam.ts).` +
      (p.excluded.mixedLabels > 0 ? ` ${p.excluded.mixedLabels} patient(s) left out: their zones carry different labels.` : '') +
      (p.excluded.splitAcrossFolds > 0 ? ` ${p.excluded.splitAcrossFolds} patient(s) lie in more than one fold (folds grouped by video): one exam per fold.` : ''),
    '',
    summaryTable(p.metrics, p.foldSummary),
    '',
  ];
  if (p.foldSummary !== null && p.foldSummary.accuracy.n > 1) out.push('### Per class, mean ± std over folds', '', perClassFoldTable(p.metrics, p.foldSummary), '');
  out.push('### Per class, all exams pooled', '', perClassPooledTable(p.metrics), '', '### Confusion matrix (rows: true class)', '', confusionTable(p.metrics), '');
  if (p.folds.length > 1) {
    out.push(table(['Fold', 'Exams', 'Accuracy', 'Balanced acc.', 'MCC'], p.folds.map((f, i) => [String(folds[i] ?? i), String(f.n), num(f.accuracy), num(f.balancedAccuracy), num(f.mcc)])), '');
  }
  return out;
}

function setCells(s: SetSummary): string[] {
  return [String(s.n), pct(s.coverage), num(s.meanSetSize, 2), pct(s.singletonRate), pct(s.singletonAccuracy), s.setSizes.slice(1).join(' / ')];
}

function conformalSection(c: ConformalReport): string[] {
  const out = [
    '## Prediction sets (split conformal)',
    '',
    `Target coverage ${pct(c.coverage)} (the true class in the set at least that often), ${c.method.toUpperCase()} scores calibrated on ${c.calibratedOn === 'validation' ? "each fold's validation split" : c.calibratedOn}. ` +
      "A set of one class is a decision; a larger set is an abstention (\"cannot decide between …\"). Each fold's test rows get the sets of that fold's own calibration; pooled figures add the folds up." +
      (c.foldsWithoutCalibration.length > 0 ? ` Folds without a calibration, not counted: ${c.foldsWithoutCalibration.join(', ')}.` : ''),
    '',
  ];
  const header = ['Level', 'Fold', 'Calibration n', 'Threshold', 'n', 'Coverage', 'Mean set size', 'Decided (one class)', 'Accuracy when decided', 'Sets of size 1 / 2 / …'];
  const rows: string[][] = [];
  for (const level of ['frame', 'video', 'patient'] as const) {
    const entry = c.levels[level];
    if (!entry) continue;
    const name = level === 'patient' ? 'exam' : level;
    for (const f of entry.folds) rows.push([name, String(f.fold), String(f.calibrationSize), f.threshold === null ? '∞ (too few)' : num(f.threshold), ...setCells(f)]);
    rows.push([`**${name}**`, '**pooled**', '', '', ...setCells(entry.pooled)]);
  }
  out.push(table(header, rows), '');
  out.push('- A threshold of ∞ means the fold had too few calibration examples at that level for the coverage asked: every set holds every class.', '');
  return out;
}

export interface MarkdownOptions {
  title?: string;
  /** Plot paths relative to report.md, by name (e.g. "frame-roc" -> "plots/frame-roc.png"). */
  plots?: Record<string, string>;
  /** Key/value facts shown under "Run" (model, protocol, wall time...). */
  extra?: Record<string, unknown>;
  /** Markdown appended at the end. */
  notes?: string;
  /** The most confidently wrong frames, with their pictures when they could be made. */
  errors?: { entries: WorstError[]; note?: string };
  /** Explanation galleries of this run (relative links). */
  galleries?: { label: string; href: string }[];
}

/** A path for a Markdown link or cell: a pipe would end the cell, a parenthesis the link. */
const cellText = (text: string): string => text.replace(/\|/g, '\\|');
const linkTarget = (href: string): string => href.split('/').map(encodeURIComponent).join('/');

function errorsSection(errors: NonNullable<MarkdownOptions['errors']>): string[] {
  const out = ['## Worst errors', ''];
  if (errors.entries.length === 0) return [...out, 'No frame was misclassified.', ''];
  out.push(
    `The ${errors.entries.length} most confidently wrong frames, one per video or image, each from the test fold of the model that predicted it; Grad-CAM shows where that model looked for the class it chose.` +
      (errors.note ? ` ${errors.note}` : ''),
    '',
  );
  out.push(
    table(
      ['#', 'Frame', 'Grad-CAM (predicted class)', 'Source', 'Fold', 'Label', 'Predicted', 'p(predicted)', 'p(label)'],
      errors.entries.map((e, k) => [
        String(k + 1),
        e.frameImage ? `![frame ${k + 1}](${linkTarget(e.frameImage)})` : '–',
        e.gradcamImage ? `![Grad-CAM ${k + 1}](${linkTarget(e.gradcamImage)})` : '–',
        cellText(e.source),
        String(e.fold),
        e.label,
        e.predicted,
        num(e.confidence),
        num(e.trueProbability),
      ]),
    ),
    '',
  );
  return out;
}

function plotLines(plots: Record<string, string>, names: [string, string][]): string[] {
  return names.filter(([key]) => plots[key]).map(([key, alt]) => `![${alt}](${plots[key]})`);
}

function levelSection(heading: string, level: 'frame' | 'video', m: Metrics, s: FoldSummary | null, plots: Record<string, string>): string[] {
  const unit = level === 'frame' ? 'frames' : 'videos/images';
  const out = [`## ${heading}`, '', `${m.n} ${unit}.`, '', '### Summary', '', summaryTable(m, s), ''];
  if (s !== null && s.accuracy.n > 1) out.push('### Per class, mean ± std over folds', '', perClassFoldTable(m, s), '');
  out.push('### Per class, all predictions pooled', '', perClassPooledTable(m), '', '### Confusion matrix (rows: true class)', '', confusionTable(m), '');
  const images = plotLines(plots, [
    [`${level}-confusion-counts`, `${level} confusion matrix`],
    [`${level}-confusion-normalized`, `${level} confusion matrix, row-normalised`],
    [`${level}-roc`, `${level} ROC curves`],
    [`${level}-pr`, `${level} precision-recall curves`],
  ]);
  if (images.length > 0) out.push(images.join('\n'), '');
  return out;
}

export function formatReportMarkdown(report: Report, options: MarkdownOptions = {}): string {
  const plots = options.plots ?? {};
  const t = report.task;
  const out: string[] = [
    `# ${options.title ?? 'Evaluation report'}`,
    '',
    `Task: ${t.description}. Classes: ${report.classes.join(', ')}. ${t.frames} frames from ${t.videos} videos/images, folds ${t.folds.join(', ')}.`,
    `Video decision: ${t.videoAggregation === 'mean' ? 'argmax of the mean frame probability' : 'majority vote of the frame predictions (ties: higher mean probability)'}.`,
    '',
    '_Research use only; not a diagnostic device._',
    '',
  ];
  if (options.extra && Object.keys(options.extra).length > 0) {
    out.push('## Run details', '', table(['Run', 'Value'], Object.entries(options.extra).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])), '');
  }
  out.push(...levelSection('Frame level', 'frame', report.frame, report.foldSummary, plots));
  out.push(...levelSection(`Video level (${VIDEO_DECISION_NAMES[t.videoAggregation]})`, 'video', report.video, report.videoFoldSummary, plots));

  out.push('### Video decision rules', '');
  out.push(
    table(
      ['Decision', 'Accuracy', 'Balanced accuracy', 'MCC', 'F1 (macro)', ...report.classes.map((c) => `${c} recall`)],
      [
        ...VIDEO_AGGREGATIONS.filter((a) => report.videoByAggregation[a]).map((a) => [VIDEO_DECISION_NAMES[a], report.videoByAggregation[a]] as const),
        ...(report.learnedVideo ? [[LEARNED_VIDEO_NAME, report.learnedVideo.metrics] as const] : []),
      ].map(([name, m]) => [name, num(m.accuracy), num(m.balancedAccuracy), num(m.mcc), num(m.macro.f1), ...report.classes.map((c) => num(m.perClass[c]?.recall ?? Number.NaN))]),
    ),
    '',
  );
  if (report.learnedVideo) {
    out.push(
      `The learned rule weighs each frame by a softmax of u · log p over its video's frames; each fold's u was fitted on its training folds' videos (their frames' out-of-fold probabilities), penalty ${report.learnedVideo.folds[0]?.l2 ?? ''}: ` +
        report.learnedVideo.folds.map((f) => `fold ${f.fold} u = (${f.query.map((q) => q.toFixed(2)).join(', ')})`).join('; ') +
        '. u = 0 is the mean rule.',
      '',
    );
  }

  if (report.folds.length > 0) {
    out.push('## Per fold', '');
    out.push(
      table(
        ['Fold', 'Frames', 'Accuracy', 'Balanced acc.', 'MCC', 'AUC (macro)', 'Videos', 'Video acc.', 'Video balanced acc.'],
        report.folds.map((f, i) => {
          const v = report.videoFolds[i];
          return [String(t.folds[i]), String(f.n), num(f.accuracy), num(f.balancedAccuracy), num(f.mcc), num(f.auc.macro), String(v?.n ?? ''), num(v?.accuracy), num(v?.balancedAccuracy)];
        }),
      ),
      '',
    );
    out.push(...plotLines(plots, [['folds-balanced-accuracy', 'balanced accuracy per fold']]), '');
  }

  if (report.patient) out.push(...patientSection(report.patient, t.folds));
  if (report.conformal) out.push(...conformalSection(report.conformal));

  const histories = Object.keys(plots).filter((k) => k.startsWith('history'));
  if (histories.length > 0) out.push('## Training history', '', ...histories.map((k) => `![${k}](${plots[k]})`), '');

  if (options.errors) out.push(...errorsSection(options.errors));
  if (options.galleries && options.galleries.length > 0) {
    out.push('## Explanation galleries', '', ...options.galleries.map((g) => `- [${g.label}](${linkTarget(g.href)})`), '');
  }

  out.push(
    '## Definitions',
    '',
    '- Recall = sensitivity = TP/(TP+FN); specificity = TN/(TN+FP), one class against the rest. A ratio with a zero denominator is reported as 0 (e.g. the precision of a class that is never predicted).',
    '- Balanced accuracy: mean recall over the classes present in the truth. MCC: Gorodkin\'s multiclass R_K (the usual MCC for two classes).',
    '- Macro averages run over the classes present in the truth or the predictions; weighted averages weight classes by support.',
    '- AUC: area under the one-vs-rest ROC curve (trapezoid; rows with tied scores form one diagonal step). Micro: all (row, class) pairs pooled. Macro: mean of the class AUCs. AP: average precision, Σ(Rₙ − Rₙ₋₁)·Pₙ.',
    '- Pooled: metrics over all out-of-fold predictions at once. Mean ± std: each fold evaluated on its own, sample standard deviation; per-class values of a fold without that class are left out.',
    '- Video level: the frames of one source video or image form one decision; its probabilities are the mean of its frames\'.',
    '',
  );
  if (options.notes) out.push(options.notes.trim(), '');
  return out.join('\n');
}
