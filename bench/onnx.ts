// Micro-benchmark: inference img/s per model, ONNX Runtime vs TF.js (wasm), at batch 1 and 8.
//   npx tsx bench/onnx.ts [--models vgg16,resnet18] [--batches 1,8] [--size 224] [--seconds 3] [--json out.json]
// Random weights and inputs (speed does not depend on them). Each measurement runs one warm-up
// batch, then repeats until `--seconds` have passed (at least twice) and reports the median.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { engineInfo, initEngine } from '../src/engine/index.js';
import { createModel, disposeBuiltModel, modelNames } from '../src/models/index.js';
import { createForwardRunner, createTfjsRunner, type ForwardRunner } from '../src/onnx/runtime.js';
import { writeJsonAtomicSync } from '../src/util/atomic.js';
import { createRng } from '../src/util/rng.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: modelNames().join(',') },
    batches: { type: 'string', default: '1,8' },
    size: { type: 'string', default: '224' },
    seconds: { type: 'string', default: '3' },
    threads: { type: 'string' },
    json: { type: 'string' },
  },
});

interface Row {
  model: string;
  runtime: string;
  batch: number;
  imgPerSec: number;
  msPerImg: number;
  runs: number;
}

async function measure(runner: ForwardRunner, batch: number, seconds: number): Promise<Omit<Row, 'model' | 'runtime' | 'batch'>> {
  const rng = createRng(1);
  const input = new Float32Array(batch * runner.inputShape.reduce((a, b) => a * b, 1)).map(() => rng.uniform(0, 1));
  await runner.run(input, batch); // warm-up: first-run allocation, kernel selection
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 2 || performance.now() - start < seconds * 1000) {
    const t0 = performance.now();
    await runner.run(input, batch);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  return { imgPerSec: (1000 * batch) / median, msPerImg: median / batch, runs: times.length };
}

async function main(): Promise<void> {
  await initEngine();
  const size = Number(values.size);
  const seconds = Number(values.seconds);
  const batches = values.batches!.split(',').map(Number);
  const threads = values.threads ? Number(values.threads) : undefined;
  const rows: Row[] = [];
  const machine = `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} logical cores, load ${os.loadavg()[0]!.toFixed(1)}`;
  console.log(`# ${machine}; TF.js ${engineInfo()?.backend} ${engineInfo()?.threads} thread(s); input ${size}×${size}\n`);
  console.log('| model | runtime | batch | img/s | ms/img |\n| --- | --- | --- | --- | --- |');
  for (const name of values.models!.split(',')) {
    const built = createModel(name, { numClasses: 3, inputSize: [size, size] });
    const runners = [await createForwardRunner(built.model, { runtime: 'ort', cacheDir: false, threads }), createTfjsRunner(built.model)];
    for (const runner of runners) {
      for (const batch of batches) {
        const result = await measure(runner, batch, seconds);
        rows.push({ model: name, runtime: runner.runtime, batch, ...result });
        console.log(`| ${name} | ${runner.runtime} | ${batch} | ${result.imgPerSec.toFixed(2)} | ${result.msPerImg.toFixed(1)} |`);
      }
      await runner.dispose();
    }
    disposeBuiltModel(built);
  }
  if (values.json) writeJsonAtomicSync(values.json, { machine, size, engine: engineInfo(), rows });
}

await main();
