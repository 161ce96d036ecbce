// `pocovid demo`: the main job on the embedded default (synthetic phantom data).
import type { Command } from 'commander';
import { runDemo } from '../demo/demo.js';
import { demoExplainStep } from '../demo/explain_step.js';

export function register(program: Command): void {
  program
    .command('demo')
    .description('synthetic phantom → dataset → train a small model → evaluate → explain → export with the page (a few minutes; no patient data)')
    .option('--out <dir>', 'output folder', 'pocovid-demo')
    .option('--seed <n>', 'seed', (v) => Number.parseInt(v, 10), 0)
    .option('--epochs <n>', 'training epochs', (v) => Number.parseInt(v, 10), 20)
    .option('--quiet', 'no progress output')
    .action(async (o: { out: string; seed: number; epochs: number; quiet?: boolean }) => {
      const result = await runDemo({ out: o.out, seed: o.seed, epochs: o.epochs, quiet: o.quiet, extraSteps: [demoExplainStep] });
      console.log(`demo finished in ${result.seconds.toFixed(0)} s (SYNTHETIC phantom data)`);
      console.log(`report:       ${result.report} (and ${result.reportHtml})`);
      for (const [name, path] of Object.entries(result.extras)) console.log(`${name.padEnd(13)} ${path}`);
      console.log(`model:        ${result.model}`);
      console.log(`page:         ${result.page || '(not built: run npm run build)'}`);
      console.log(`serve it:     pocovid serve --model ${result.model}   (then open http://127.0.0.1:8080/)`);
    });
}
