// `pocovid bench`: throughput and memory per model on this machine.
import { Option, type Command } from 'commander';
import { measureModel } from '../bench/measure.js';
import { CHILD_FLAG, formatBenchTable, runBench } from '../bench/run.js';

export function register(program: Command): void {
  program
    .command('bench')
    .description('measure inference and training-step images/s, threads and peak memory per model')
    .option('--json', 'print JSON: {"threads", "results": [{"model", "runtime", "inferenceImgPerSec", "trainImgPerSec", "peakRssMb", ...}]}')
    .option('--models <list>', 'comma-separated model names (default: all)')
    .option('--repeats <n>', 'timed repetitions per measurement', (v) => Number.parseInt(v, 10), 3)
    .addOption(new Option(`${CHILD_FLAG} <model>`, 'measure one model and print its JSON line (used by bench itself)').hideHelp())
    .action(async (opts: { json?: boolean; models?: string; repeats: number; benchChild?: string }) => {
      if (opts.benchChild) {
        const result = await measureModel(opts.benchChild, { repeats: opts.repeats });
        process.stdout.write(JSON.stringify(result) + '\n');
        return;
      }
      const models = opts.models?.split(',').map((m) => m.trim()).filter(Boolean);
      const report = await runBench(models, ['--repeats', String(opts.repeats)], (r) => {
        if (!opts.json) console.error(`${r.model}: ${r.inferenceImgPerSec.toFixed(1)} img/s inference, ${r.trainImgPerSec.toFixed(1)} img/s training`);
      });
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatBenchTable(report));
    });
}
