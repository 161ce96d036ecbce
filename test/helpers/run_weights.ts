// The weights of a saved run's model by layer/weight name, for comparing two training runs, and
// the names of the weights training may change (so that a share of differing weights is counted
// over those, not diluted by frozen weights that are equal in any two runs of the same seed).
import { loadModel } from '../../src/infer/model_dir.js';
import { createModel, disposeBuiltModel, type ModelOptions } from '../../src/models/index.js';
import { modelWeightsByName, readModelWeights } from '../../src/models/weights/load.js';

export async function weightsOfRun(run: string): Promise<Map<string, Float32Array>> {
  const loaded = await loadModel(run);
  const out = new Map<string, Float32Array>();
  for (const [name, w] of readModelWeights(loaded.members[0]!)) out.set(name, w.data);
  loaded.members.forEach((m) => m.dispose());
  return out;
}

/** The trainable weights of `model` built with `options`, named as weightsOfRun names them. */
export function trainableWeightNames(model: string, options: ModelOptions): Set<string> {
  const built = createModel(model, options);
  try {
    const trainable = new Set(built.model.trainableWeights);
    return new Set([...modelWeightsByName(built.model)].filter(([, variable]) => trainable.has(variable)).map(([name]) => name));
  } finally {
    disposeBuiltModel(built);
  }
}

/**
 * |a - b| of every value of the named weights (all of them by default). Both runs must hold the
 * same weights, and every named weight must be among them.
 */
export function weightDifferences(a: Map<string, Float32Array>, b: Map<string, Float32Array>, names?: Set<string>): number[] {
  if ([...a.keys()].sort().join('\n') !== [...b.keys()].sort().join('\n')) throw new Error('the two runs hold different weights');
  const chosen = names ?? new Set(a.keys());
  const out: number[] = [];
  for (const name of chosen) {
    const [x, y] = [a.get(name), b.get(name)];
    if (!x || !y) throw new Error(`no weight "${name}" in the runs`);
    for (let i = 0; i < x.length; i++) out.push(Math.abs(x[i]! - y[i]!));
  }
  return out;
}
