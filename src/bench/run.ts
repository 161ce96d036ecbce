// `pocovid bench`: each (model, runtime) is measured in a child process of its own, so that its
// peak memory is its own and one model's allocations do not slow the next. The optional cv
// timing runs afterwards in this process.
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { initEngine } from '../engine/index.js';
import { modelNames } from '../models/registry.js';
import '../models/index.js';
import { chooseRuntime, type Runtime } from '../onnx/runtime.js';
import { benchCrossValidation, CV_BENCH_SPECS, type CvBenchResult } from './cv.js';
import type { ModelBenchResult } from './measure.js';

export interface BenchReport {
  /** TF.js wasm threads of this process (each result has its runtime's own). */
  threads: number;
  machine: { cpus: number; node: string; platform: string };
  results: ModelBenchResult[];
  /** Wall time of `cv` on the fixed phantom dataset (with --cv). */
  cv?: CvBenchResult[];
}

export const CHILD_FLAG = '--bench-child';
export const BENCH_RUNTIMES: readonly Runtime[] = ['tfjs', 'ort'];

export interface BenchOptions {
  /** Default: every registered model. */
  models?: string[];
  /** Default: tfjs, and ort where it loads. */
  runtimes?: Runtime[];
  repeats?: number;
  inputSize?: [number, number];
  /** Also time `cv` on the phantom dataset; epochs per run. */
  cv?: { epochs: number };
  onResult?: (result: ModelBenchResult) => void;
  onCvResult?: (result: CvBenchResult) => void;
}

/** Runs `measureModel` for one model on one runtime in a fresh Node process started like this one. */
function runChild(model: string, runtime: Runtime, extraArgs: string[]): Promise<ModelBenchResult> {
  return new Promise((resolvePromise, reject) => {
    const args = [...process.execArgv, process.argv[1]!, 'bench', CHILD_FLAG, model, '--runtimes', runtime, ...extraArgs];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`bench of ${model} on ${runtime} exited with code ${code}`));
      try {
        resolvePromise(JSON.parse(line) as ModelBenchResult);
      } catch {
        reject(new Error(`bench of ${model} on ${runtime} printed no result: ${stdout.slice(-500)}`));
      }
    });
  });
}

/** The runtimes to measure: as asked ('ort' must load), or tfjs plus ort where it loads. */
async function resolveRuntimes(asked: Runtime[] | undefined): Promise<Runtime[]> {
  if (asked) {
    for (const runtime of asked) await chooseRuntime(runtime);
    return [...new Set(asked)];
  }
  return (await chooseRuntime('auto')) === 'ort' ? ['tfjs', 'ort'] : ['tfjs'];
}

export async function runBench(options: BenchOptions = {}): Promise<BenchReport> {
  const { threads } = await initEngine();
  const runtimes = await resolveRuntimes(options.runtimes);
  const childArgs = ['--repeats', String(options.repeats ?? 3), ...(options.inputSize ? ['--input-size', options.inputSize.join('x')] : [])];
  const results: ModelBenchResult[] = [];
  for (const model of options.models ?? modelNames()) {
    for (const runtime of runtimes) {
      const result = await runChild(model, runtime, childArgs);
      options.onResult?.(result);
      results.push(result);
    }
  }
  const report: BenchReport = { threads, machine: { cpus: cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` }, results };
  if (options.cv) {
    const specs = CV_BENCH_SPECS.filter((s) => !options.models || options.models.includes(s.model)).map((s) => (options.inputSize ? { ...s, inputSize: options.inputSize } : s));
    report.cv = await benchCrossValidation({ specs, runtimes, epochs: options.cv.epochs, onResult: options.onCvResult });
  }
  return report;
}

const fixed = (value: number | null, digits: number): string => (value === null ? '–' : value.toFixed(digits));

export function formatBenchTable(report: BenchReport): string {
  const lines = [
    `threads: ${report.threads} TF.js (${report.machine.cpus} CPUs, Node ${report.machine.node})`,
    '| model | runtime | threads | input | inference img/s (batch 1) | inference img/s (batch 8) | int8 inference img/s (batch 1) | int8 inference img/s (batch 8) | feature cache img/s (batch 16) | full train step img/s (batch 16) | trainable part on cached features img/s | cached features | peak RSS MB |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|',
  ];
  for (const r of report.results) {
    lines.push(
      `| ${r.model} | ${r.runtime} | ${r.threads} | ${r.inputShape.join('×')} | ${fixed(r.inferenceBatch1ImgPerSec, 1)} | ${fixed(r.inferenceImgPerSec, 1)} | ${fixed(r.int8InferenceBatch1ImgPerSec, 1)} | ${fixed(r.int8InferenceImgPerSec, 1)} | ${fixed(r.featureCacheImgPerSec, 1)} | ${fixed(r.trainImgPerSec, 1)} | ${fixed(r.trainCachedImgPerSec, 0)} | ${r.cachedFeatureShapes.map((shape) => shape.join('×')).join(', ')} | ${r.peakRssMb.toFixed(0)} |`,
    );
  }
  if (report.cv?.length) {
    lines.push('', '`cv` on the fixed phantom dataset:', '| model | runtime | input | folds | epochs | frames | seconds |', '|---|---|---|---:|---:|---:|---:|');
    for (const c of report.cv) lines.push(`| ${c.model} | ${c.runtime} | ${c.inputSize.join('×')} | ${c.folds} | ${c.epochs} | ${c.frames} | ${c.seconds.toFixed(1)} |`);
  }
  return lines.join('\n');
}
