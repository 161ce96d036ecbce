// Entry point of the `pocovid` command. Each sub-command lives in its own module that
// exports `register(program)`; this file only wires them together and handles errors: every
// user error (a bad option value, a missing option, a bad file) is one line `pocovid: …` on
// stderr and exit code 2; anything else is a bug and prints its stack with exit code 1.
import { Command, CommanderError } from 'commander';
import { PocovidError } from '../errors.js';
import { VERSION } from '../version.js';
import { commandModules } from './commands.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('pocovid')
    .description('Lung-ultrasound COVID-19 / pneumonia / healthy classification toolkit (research use only, not a diagnostic device)')
    .version(VERSION)
    // Errors come back to main() as CommanderErrors, which prints them in the one style;
    // sub-commands inherit both settings when they are created, so they are set first.
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  for (const mod of commandModules) mod.register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; a command given without its
      // sub-command has had its help printed ('commander.help').
      if (err.exitCode === 0) return;
      if (err.code !== 'commander.help') console.error(`pocovid: ${err.message.replace(/^error: /, '')}`);
      process.exitCode = 2;
      return;
    }
    if (err instanceof PocovidError) {
      console.error(`pocovid: ${err.message}`);
      process.exitCode = 2;
      return;
    }
    console.error(err);
    process.exitCode = 1;
  }
}

// Run when this file is the entry point (`tsx src/cli/main.ts ...` during development);
// bin/pocovid.js imports it and calls main() itself.
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  await main(process.argv);
}
