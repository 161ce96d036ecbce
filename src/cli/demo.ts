// `pocovid demo`: the main job on the embedded default (synthetic phantom data).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { runDemo } from '../demo/demo.js';
import { demoExplainStep } from '../demo/explain_step.js';
import { integer, seed } from './options.js';

/** A path as one shell word (quoted when it holds anything but safe characters). */
function shellWord(path: string): string {
  return /^[\w./@%+=:,-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

/**
 * How to run pocovid from where the user is: `npx pocovid` inside the repository (npx runs the
 * project's own bin there; elsewhere it would look for a package of that name on the registry),
 * else node with the path of bin/pocovid.js.
 */
export function pocovidCommand(cwd = process.cwd()): string {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return resolve(cwd) === root ? 'npx pocovid' : `node ${shellWord(join(root, 'bin', 'pocovid.js'))}`;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('synthetic phantom → dataset → train a small model → evaluate → explain → export with the page (a few minutes; no patient data)')
    .option('--out <dir>', 'output folder', 'pocovid-demo')
    .option('--seed <n>', 'seed', seed, 0)
    .option('--epochs <n>', 'training epochs', integer(1, 10_000), 20)
    .option('--quiet', 'no progress output')
    .action(async (o: { out: string; seed: number; epochs: number; quiet?: boolean }) => {
      const result = await runDemo({ out: o.out, seed: o.seed, epochs: o.epochs, quiet: o.quiet, extraSteps: [demoExplainStep] });
      const h = result.headline;
      console.log(`demo finished in ${result.seconds.toFixed(0)} s (SYNTHETIC phantom data)`);
      console.log(
        `test fold 0: frame accuracy ${h.frameAccuracy.toFixed(3)} (balanced ${h.frameBalancedAccuracy.toFixed(3)}) on ${h.frames} frames, ` +
          `video accuracy ${h.videoAccuracy.toFixed(3)} on ${h.videos} videos and images`,
      );
      console.log(`report:       ${result.report} (and ${result.reportHtml})`);
      for (const [name, path] of Object.entries(result.extras)) console.log(`${name.padEnd(13)} ${path}`);
      console.log(`model:        ${result.model}`);
      console.log(`page:         ${result.page || '(not built: run npm run build)'}`);
      // Runs as printed from the repository on a fresh clone: npx finds bin/pocovid.js through package.json.
      console.log(`serve it:     ${pocovidCommand()} serve --model ${shellWord(result.model)}   (then open http://127.0.0.1:8080/)`);
    });
}
