// The weights of a saved run's model by layer/weight name, for comparing two training runs.
import { loadModel } from '../../src/model_dir/run.js';
import { readModelWeights } from '../../src/models/weights/load.js';

export async function weightsOfRun(run: string): Promise<Map<string, Float32Array>> {
  const loaded = await loadModel(run);
  const out = new Map<string, Float32Array>();
  for (const [name, w] of readModelWeights(loaded.members[0]!)) out.set(name, w.data);
  loaded.members.forEach((m) => m.dispose());
  return out;
}
