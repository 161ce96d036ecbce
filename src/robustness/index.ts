// `pocovid robustness`: how often a decision flips when a frame is decoded, re-encoded or resized
// slightly differently (issue 15). measure.ts runs the models, stats.ts counts, report.ts writes.
import { join } from 'node:path';
import { measureRobustness, type RobustnessOptions } from './measure.js';
import { buildRobustnessReport, writeRobustnessOutputs, type RobustnessReport, type WrittenRobustness } from './report.js';

export { cleanCheckWarning } from './report.js';

export { PERTURBATIONS, PERTURBATION_NAMES, selectPerturbations } from './perturbations.js';
export { ROBUSTNESS_TARGETS } from './stats.js';
export type { RobustnessOptions } from './measure.js';
export type { RobustnessReport } from './report.js';

export interface RunRobustnessOptions extends RobustnessOptions {
  /** Output folder; default <run>/robustness. */
  out?: string;
  plots?: boolean;
}

/** Measures, then writes robustness.json, robustness.md, plots/ and config.json into the output folder. */
export async function runRobustness(options: RunRobustnessOptions): Promise<{ report: RobustnessReport; written: WrittenRobustness; outDir: string }> {
  const measurement = await measureRobustness(options);
  const report = buildRobustnessReport(measurement);
  const outDir = options.out ?? join(options.run, 'robustness');
  const written = await writeRobustnessOutputs(
    report,
    measurement.records,
    {
      runtime: options.runtime ?? 'auto',
      source: options.source,
      batchSize: measurement.batchSize,
      mirrorAverage: measurement.mirrorAverage,
      perturbations: measurement.perturbations.map((p) => ({ name: p.name, description: p.description })),
    },
    outDir,
    { plots: options.plots },
  );
  return { report, written, outDir };
}
