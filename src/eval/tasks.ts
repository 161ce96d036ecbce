// Reductions of a multiclass prediction table to smaller tasks, e.g. covid vs pneumonia only, or
// healthy vs any disease. They act on predictions, so one trained model serves every task.
import { UnknownChoiceError, PocovidError } from '../errors.js';
import { argmax } from './metrics.js';
import type { BinaryTask, PredictionRow } from './types.js';
import { BINARY_TASKS } from './types.js';

export interface TaskTable {
  classes: string[];
  rows: PredictionRow[];
  description: string;
}

/**
 * Keeps the frames whose true label is in `keep`, and the probability columns of those classes,
 * renormalised to sum to 1 (uniform if the kept classes all had 0); predicted = argmax of the kept.
 */
export function restrictClasses(rows: readonly PredictionRow[], classes: readonly string[], keep: readonly string[]): TaskTable {
  const unknown = keep.filter((c) => !classes.includes(c));
  if (unknown.length > 0) throw new UnknownChoiceError('class', unknown[0]!, classes);
  if (new Set(keep).size < 2) throw new PocovidError(`--classes needs at least two different classes; got "${keep.join(',')}"`);
  const kept = [...new Set(keep)];
  const columns = kept.map((c) => classes.indexOf(c));
  const result = rows
    .filter((r) => kept.includes(r.label))
    .map((r) => {
      const raw = columns.map((k) => r.probs[k]!);
      const total = raw.reduce((a, b) => a + b, 0);
      const probs = total > 0 ? raw.map((p) => p / total) : raw.map(() => 1 / raw.length);
      return { ...r, probs, predicted: kept[argmax(probs)]! };
    });
  if (result.length === 0) throw new PocovidError(`no frame has a label in ${kept.join(', ')}`);
  return { classes: kept, rows: result, description: `${kept.join(' vs ')} (frames of other classes left out; probabilities renormalised over these classes)` };
}

/** The healthy class's name in the prediction table. */
export const HEALTHY_CLASS = 'regular';

/** regular → "healthy", every other class → "disease"; p_disease = 1 − p_regular. */
export function healthyVsDisease(rows: readonly PredictionRow[], classes: readonly string[]): TaskTable {
  const healthy = classes.indexOf(HEALTHY_CLASS);
  if (healthy < 0) throw new PocovidError(`healthy-vs-disease needs a "${HEALTHY_CLASS}" class; classes are ${classes.join(', ')}`);
  const binary = ['healthy', 'disease'];
  const result = rows.map((r) => {
    const pHealthy = r.probs[healthy]!;
    const probs = [pHealthy, 1 - pHealthy];
    return { ...r, label: r.label === HEALTHY_CLASS ? 'healthy' : 'disease', probs, predicted: binary[argmax(probs)]! };
  });
  return { classes: binary, rows: result, description: `healthy (${HEALTHY_CLASS}) vs disease (${classes.filter((c) => c !== HEALTHY_CLASS).join(', ')})` };
}

export function applyBinaryTask(task: string, rows: readonly PredictionRow[], classes: readonly string[]): TaskTable {
  if (task === 'healthy-vs-disease') return healthyVsDisease(rows, classes);
  throw new UnknownChoiceError('binary task', task, BINARY_TASKS as readonly BinaryTask[]);
}
