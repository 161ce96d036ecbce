#!/usr/bin/env node
// Runs the compiled CLI (npm ci builds it through the "prepare" script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'cli', 'main.js');
if (!existsSync(compiled)) {
  console.error(`pocovid: ${compiled} is missing; run "npm run build" (npm ci runs it) first.`);
  process.exit(1);
}
const { main } = await import(compiled);
await main(process.argv);
