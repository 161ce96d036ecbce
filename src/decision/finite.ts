// The check that stands between a network's output and a label: damaged or diverged weights give
// NaN or infinite outputs, and argMax over NaN silently picks the first class ("covid"). Every
// member's probabilities pass through here before they are combined, so no front end (CLI, server,
// page) can turn them into a diagnosis. Pure TypeScript, no Node and no TF.js: the page uses it.
import { ModelOutputError } from '../errors.js';

/** How far a softmax row may stray from a probability vector (float32 rounding, int8 graphs). */
const TOLERANCE = 1e-3;

/**
 * The problem with `row` as one frame's class probabilities, or undefined when it is a usable
 * probability vector: every value finite and in [0, 1], summing to 1.
 */
export function probabilityProblem(row: ArrayLike<number>): string | undefined {
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    const p = row[i]!;
    if (Number.isNaN(p)) return `output ${i} is NaN`;
    if (!Number.isFinite(p)) return `output ${i} is ${p > 0 ? '+' : '-'}infinite`;
    if (p < -TOLERANCE || p > 1 + TOLERANCE) return `output ${i} is ${p}, outside [0, 1]`;
    sum += p;
  }
  if (row.length === 0) return 'no outputs';
  if (Math.abs(sum - 1) > 10 * TOLERANCE) return `outputs sum to ${sum}, not 1`;
  return undefined;
}

/**
 * Throws ModelOutputError when `row` is not a probability vector. `member` names the model
 * that produced it (e.g. "member-1"), `frame` the frame's index in the input.
 */
export function checkProbabilities(row: ArrayLike<number>, member: string, frame: number): void {
  const problem = probabilityProblem(row);
  if (problem) throw new ModelOutputError(member, frame, problem);
}
