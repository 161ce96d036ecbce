// `pocovid export`: gather a run's fold models into one model folder, with the in-browser page.
import { Command } from 'commander';
import { UnknownChoiceError } from '../errors.js';
import { exportRun } from '../infer/export.js';
import { exportModelDirOnnx } from '../onnx/model_dir.js';

const int = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${value}`);
  return n;
};

export function register(program: Command): void {
  program
    .command('export')
    .description('write a run\'s model (all folds as an ensemble, or one fold) as a TF.js layers model folder with its preprocessing config, class names and the in-browser page')
    .requiredOption('--run <dir>', 'training run folder (holds fold-<k>/model/)')
    .requiredOption('--out <dir>', 'model folder to write')
    .option('--fold <k>', 'export this fold only', int)
    .option('--no-page', 'do not copy the web page next to the model')
    .option('--format <format>', 'tfjs, or onnx: also write each member as <member>/model.onnx', 'tfjs')
    .option('--opset <n>', 'ONNX opset for --format onnx (11-21)', int, 13)
    .action(async (o: { run: string; out: string; fold?: number; page: boolean; format: string; opset: number }) => {
      if (o.format !== 'tfjs' && o.format !== 'onnx') throw new UnknownChoiceError('format', o.format, ['tfjs', 'onnx']);
      const result = await exportRun(o.run, o.out, { fold: o.fold, page: o.page });
      if (o.format === 'onnx') for (const file of await exportModelDirOnnx(o.out, { opset: o.opset })) console.log(`wrote ${file}`);
      console.log(`wrote ${result.meta.members.length} member(s) of "${result.meta.name}" (${result.meta.classes.join(', ')}) to ${o.out}`);
      if (result.pageFiles.length > 0) console.log(`page: ${o.out}/index.html (serve the folder with any static server, or: pocovid serve --model ${o.out})`);
      else if (o.page) console.log('page not copied: it has not been built (npm run build:page)');
    });
}
