// `pocovid models [--json]`: the registered models, their input, parameter counts and weight sources.
import type { Command } from 'commander';
import { initEngine } from '../engine/index.js';
import { listModels, summarizeModel, type ModelSummary } from '../models/index.js';

export function register(program: Command): void {
  program
    .command('models')
    .description('list the registered models (parameters at 3 classes with the default trainable layers)')
    .option('--json', 'print a JSON array instead of a table')
    .action(async (options: { json?: boolean }) => {
      await initEngine();
      const summaries = listModels().map(summarizeModel);
      console.log(options.json ? JSON.stringify(summaries, null, 2) : formatTable(summaries));
    });
}

function formatTable(summaries: ModelSummary[]): string {
  const rows = summaries.map((s) => [
    s.name,
    s.inputShape.join('x'),
    s.trainableParams.toLocaleString('en-US'),
    s.nonTrainableParams.toLocaleString('en-US'),
    s.pretrained.length ? s.pretrained.map((source) => source.fileName).join(', ') : 'none (from scratch)',
  ]);
  const header = ['name', 'input', 'trainable', 'non-trainable', 'pretrained weights'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (i === 2 || i === 3 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  const descriptions = summaries.map((s) => `  ${s.name}: ${s.description}`);
  return [line(header), ...rows.map(line), '', ...descriptions].join('\n');
}
