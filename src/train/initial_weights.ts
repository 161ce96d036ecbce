// Where a run's starting weights come from: --init (an earlier run's model, for fine-tuning on
// new data), --weights (a pretrained file), the weight cache (a file fetched earlier by
// `pocovid weights fetch`), or random initialisation, in that order. The choice is recorded.
import { existsSync } from 'node:fs';
import type { BuiltModel } from '../models/types.js';
import { loadPretrained } from '../models/weights/load.js';
import { cachePathFor } from '../models/weights/fetch.js';
import { loadModel } from '../model_dir/run.js';
import { PocovidError } from '../errors.js';
import type { TrainConfig } from './config.js';
import type { ProgressReporter } from './progress.js';
import { restoreWeights, snapshotWeights } from './checkpoint.js';

export interface WeightsUsed {
  kind: 'init-run' | 'file' | 'cache' | 'random';
  path?: string;
}

export async function applyInitialWeights(built: BuiltModel, config: TrainConfig, progress: ProgressReporter): Promise<WeightsUsed> {
  if (config.init) {
    const loaded = await loadModel(config.init);
    const member = loaded.members[0];
    if (!member) throw new PocovidError(`${config.init}: holds no model`);
    if (loaded.meta.name !== built.name) {
      throw new PocovidError(`${config.init}: is a ${loaded.meta.name} model; this run builds ${built.name}`);
    }
    // Same architecture and names: every weight must match (strict), the classifier included.
    restoreWeights(built.model, snapshotWeights(member, -1));
    loaded.members.forEach((m) => m.dispose());
    return { kind: 'init-run', path: config.init };
  }
  if (config.weights) {
    await loadPretrained(built, config.weights);
    return { kind: 'file', path: config.weights };
  }
  for (const source of built.cfg.sources) {
    const cached = cachePathFor(source);
    if (existsSync(cached)) {
      await loadPretrained(built, cached, source.format);
      return { kind: 'cache', path: cached };
    }
  }
  if (built.cfg.sources.length > 0) {
    const names = built.cfg.sources.map((s) => s.fileName).join(' or ');
    progress.log(
      `warning: no pretrained weights for ${built.name} (${names}); training from random initialisation. ` +
        `Pass --weights <file> or run \`pocovid weights fetch ${built.name}\`.`,
    );
  }
  return { kind: 'random' };
}
