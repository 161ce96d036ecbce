// `pocovid bench`: each model is measured in a child process of its own, so that its peak
// memory is its own and one model's allocations do not slow the next.
import { spawn } from 'node:child_process';
import { initEngine } from '../engine/index.js';
import { modelNames } from '../models/registry.js';
import '../models/index.js';
import type { ModelBenchResult } from './measure.js';

export interface BenchReport {
  threads: number;
  machine: { cpus: number; node: string; platform: string };
  results: ModelBenchResult[];
}

export const CHILD_FLAG = '--bench-child';

/** Runs `measureModel` for one model in a fresh Node process started like this one. */
function runChild(model: string, extraArgs: string[]): Promise<ModelBenchResult> {
  return new Promise((resolvePromise, reject) => {
    const args = [...process.execArgv, process.argv[1]!, 'bench', CHILD_FLAG, model, ...extraArgs];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`bench of ${model} exited with code ${code}`));
      try {
        resolvePromise(JSON.parse(line) as ModelBenchResult);
      } catch {
        reject(new Error(`bench of ${model} printed no result: ${stdout.slice(-500)}`));
      }
    });
  });
}

export async function runBench(models: string[] | undefined, extraArgs: string[], onResult?: (r: ModelBenchResult) => void): Promise<BenchReport> {
  const { threads } = await initEngine();
  const { cpus } = await import('node:os');
  const results: ModelBenchResult[] = [];
  for (const model of models ?? modelNames()) {
    const result = await runChild(model, extraArgs);
    onResult?.(result);
    results.push(result);
  }
  return { threads, machine: { cpus: cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` }, results };
}

export function formatBenchTable(report: BenchReport): string {
  const lines = [
    `threads: ${report.threads} (${report.machine.cpus} CPUs, Node ${report.machine.node})`,
    '| model | runtime | input | inference img/s (batch 8) | train step img/s (batch 16) | trainable part only, cached features img/s | peak RSS MB |',
    '|---|---|---|---:|---:|---:|---:|',
  ];
  for (const r of report.results) {
    lines.push(
      `| ${r.model} | ${r.runtime} | ${r.inputShape.join('×')} | ${r.inferenceImgPerSec.toFixed(1)} | ${r.trainImgPerSec.toFixed(1)} | ${r.trainCachedImgPerSec.toFixed(0)} | ${r.peakRssMb.toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}
