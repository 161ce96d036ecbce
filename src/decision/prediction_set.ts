// The prediction set a front end shows beside a label: the model folder's split-conformal
// calibration (src/eval/conformal.ts) applied to one decision's probabilities, with the words
// predict, serve, the page and predict --exam all print. Pure (no TF.js, no Node): the page's main
// thread imports the wording without the decision core.
import { conformalSet, describeClasses, describeSet, type ConformalCalibration, type ConformalLevel } from '../eval/conformal.js';

export interface PredictionSet {
  /** Class names, most probable first. */
  classes: string[];
  /** The target share of cases whose set holds the true class. */
  coverage: number;
  level: ConformalLevel;
  /** One class: a decision; more: an abstention. */
  decided: boolean;
  /** The class, or "cannot decide between covid and pneumonia". */
  text: string;
  /** Calibration cases behind the threshold. */
  calibrationSize: number;
}

/**
 * The set of a decision at `level`, or undefined when the calibration has no scores at that level:
 * a folder calibrated on too few videos or exams keeps only the levels it had, and a missing set
 * must not cost the user the diagnosis itself.
 */
export function predictionSetOf(
  calibration: ConformalCalibration,
  level: ConformalLevel,
  probabilities: readonly number[],
  classes: readonly string[],
): PredictionSet | undefined {
  if (!calibration.levels[level]) return undefined;
  // Scores computed over another class order would put the set's indices on the wrong names.
  if (calibration.classes.join('\n') !== classes.join('\n')) {
    throw new Error(`the conformal calibration is for classes ${calibration.classes.join(', ')}, the model gives ${classes.join(', ')}`);
  }
  const set = conformalSet(calibration, level, probabilities);
  const { decided, text } = describeSet(set.classes, classes);
  return { classes: set.classes.map((k) => classes[k]!), coverage: set.coverage, level, decided, text, calibrationSize: set.calibrationSize };
}

/** "90%", "97.5%". */
export function coveragePercent(coverage: number): string {
  return `${Number((100 * coverage).toFixed(1))}%`;
}

/** The page's line: "90% prediction set: covid or pneumonia — cannot decide" / "… : covid — decided". */
export function setLine(set: PredictionSet): string {
  return `${coveragePercent(set.coverage)} prediction set: ${describeClasses(set.classes)} — ${set.decided ? 'decided' : 'cannot decide'}`;
}

/** predict's note after a label when the set abstains: "cannot decide between covid and pneumonia (90% set)". */
export function abstentionNote(set: PredictionSet | undefined): string | undefined {
  return set && !set.decided ? `${set.text} (${coveragePercent(set.coverage)} set)` : undefined;
}

/** The CSV cell: the set's classes joined by "|" ("covid|pneumonia"), empty without a set. */
export function setCell(set: PredictionSet | undefined): string {
  return set ? set.classes.join('|') : '';
}
