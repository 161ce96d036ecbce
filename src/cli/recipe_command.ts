// A recipe spelled back as the `pocovid cv` / `pocovid train` command line that trains it (what
// `pocovid sweep` prints for its best recipe). It reads the flags from addTrainOptions itself, so a
// flag renamed there is renamed here too.
import { Command } from 'commander';
import { trainConfigSchema, type TrainConfigInput } from '../train/config.js';
import { addTrainOptions } from './train_options.js';

/** A word of a command line, quoted for a POSIX shell when it needs to be. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Config names whose CLI flag is not their kebab-case attribute. */
const FLAG_OF: Record<string, string> = { earlyStoppingPatience: 'patience' };

/**
 * The `pocovid <command>` line that trains with `options`: the options that differ from the
 * schema's defaults, spelled as addTrainOptions spells them. Options the command line cannot set
 * (config-only ones such as plateauPatience) are returned apart, as `name=value`. `extra` words
 * (the command's own options) are appended, quoted like the rest.
 */
export function trainCommandLine(command: string, options: Omit<TrainConfigInput, 'fold'>, extra: string[] = []): { line: string; notExpressible: string[] } {
  const flags = new Map(addTrainOptions(new Command(command)).options.map((o) => [o.attributeName(), o.long!]));
  const defaults = trainConfigSchema.parse({ data: '-', model: '-', out: '-', fold: 0 }) as Record<string, unknown>;
  const resolved = trainConfigSchema.parse({ ...options, fold: 0 }) as Record<string, unknown>;
  const words = ['pocovid', command, '--data', String(resolved['data']), '--model', String(resolved['model']), '--out', String(resolved['out'])];
  const notExpressible: string[] = [];
  for (const [key, value] of Object.entries(resolved)) {
    if (['data', 'model', 'out', 'fold', 'refit'].includes(key) || value === undefined || JSON.stringify(value) === JSON.stringify(defaults[key])) continue;
    const flag = flags.get(FLAG_OF[key] ?? key);
    if (!flag) {
      notExpressible.push(`${key}=${JSON.stringify(value)}`);
      continue;
    }
    let text: string;
    if (typeof value === 'boolean') text = value ? 'on' : 'off';
    else if (key === 'inputSize') text = (value as number[]).join('x');
    else if (Array.isArray(value)) text = value.join(',');
    else text = String(value);
    words.push(flag, text);
  }
  return { line: [...words, ...extra].map(shellWord).join(' '), notExpressible };
}
