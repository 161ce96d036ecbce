// The list of sub-command modules. Add a line here when adding a command.
import type { Command } from 'commander';
import * as dataCommands from './data.js';

export interface CommandModule {
  register(program: Command): void;
}

export const commandModules: CommandModule[] = [
  dataCommands,
];
