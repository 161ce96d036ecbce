// The list of sub-command modules. Add a line here when adding a command.
import type { Command } from 'commander';
import * as dataCommands from './data.js';
import * as modelsCommands from './models.js';
import * as benchCommands from './bench.js';
import * as weightsCommands from './weights.js';
import * as evaluateCommands from './evaluate.js';
import * as predictCommand from './predict.js';
import * as exportCommand from './export.js';
import * as serveCommand from './serve.js';
import * as trainCommand from './train.js';
import * as cvCommand from './cv.js';
import * as demoCommand from './demo.js';
import * as guardCommand from './guard.js';
import * as explainCommand from './explain.js';
import * as robustnessCommand from './robustness.js';
import * as updateCommand from './update.js';
import * as workerCommands from './worker.js';
import * as sweepCommand from './sweep.js';

export interface CommandModule {
  register(program: Command): void;
}

export const commandModules: CommandModule[] = [
  dataCommands,
  modelsCommands,
  benchCommands,
  weightsCommands,
  evaluateCommands,
  predictCommand,
  exportCommand,
  serveCommand,
  trainCommand,
  cvCommand,
  demoCommand,
  guardCommand,
  explainCommand,
  robustnessCommand,
  updateCommand,
  workerCommands,
  sweepCommand,
];
