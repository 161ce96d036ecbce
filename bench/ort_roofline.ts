// Micro-benchmark: how close each model's ONNX Runtime inference comes to what this CPU can do.
//   npx tsx bench/ort_roofline.ts [--models vgg16,resnet18] [--seconds 5] [--threads 2] [--json out.json]
// 1. The machine's convolution throughput: one 3×3 convolution of VGG-16's block3 shape
//    (56×56×256 → 256), alone in an ONNX graph, in GFLOP/s (1 multiply-add = 2 FLOP).
// 2. Per model: FLOPs per image (convolutions, depthwise convolutions, dense layers), measured
//    img/s at batch 1, the GFLOP/s that is, and the img/s the single convolution's rate allows.
// 3. The CPU's nominal fp32 peak: cores × clock (/proc/cpuinfo) × 32 FLOP per cycle (two 8-wide
//    AVX2 FMA units, as on AMD Zen 2/3 and Intel since Haswell; turbo clocks can exceed it).
// A model running near the peak cannot get faster by graph changes; only fewer FLOPs (another
// algorithm, lower precision) would help.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine/index.js';
import { createModel, disposeBuiltModel } from '../src/models/index.js';
import { createForwardRunner, type ForwardRunner } from '../src/onnx/runtime.js';
import { writeJsonAtomicSync } from '../src/util/atomic.js';
import { createRng } from '../src/util/rng.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'grayscale_cnn,mobilenet_v1,resnet18,vgg16' },
    seconds: { type: 'string', default: '5' },
    threads: { type: 'string' },
    json: { type: 'string' },
  },
});

type Layer = tfl.LayersModel['layers'][number];

/** Multiply-adds per image of the layers that dominate the cost. */
function multiplyAdds(model: tfl.LayersModel): number {
  let total = 0;
  for (const layer of model.layers as Layer[]) {
    const className = layer.getClassName();
    const out = layer.outputShape as number[];
    const config = layer.getConfig() as { kernelSize?: number[]; depthMultiplier?: number; filters?: number; units?: number };
    const inShape = layer.inboundNodes[0]?.inputTensors[0]?.shape as number[] | undefined;
    if (!inShape) continue;
    if (className === 'Conv2D') {
      const [kh, kw] = config.kernelSize!;
      total += out[1]! * out[2]! * out[3]! * kh! * kw! * inShape[3]!;
    } else if (className === 'DepthwiseConv2D') {
      const [kh, kw] = config.kernelSize!;
      total += out[1]! * out[2]! * out[3]! * kh! * kw!;
    } else if (className === 'Dense') {
      total += inShape[inShape.length - 1]! * config.units!;
    }
  }
  return total;
}

async function medianSeconds(run: () => Promise<void>, seconds: number): Promise<{ median: number; runs: number }> {
  await run();
  const times: number[] = [];
  const until = performance.now() + seconds * 1000;
  while (times.length < 3 || performance.now() < until) {
    const started = performance.now();
    await run();
    times.push((performance.now() - started) / 1000);
  }
  times.sort((a, b) => a - b);
  return { median: times[times.length >> 1]!, runs: times.length };
}

function randomInput(runner: ForwardRunner, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: runner.inputShape.reduce((a, b) => a * b, 1) }, () => rng.normal());
}

const seconds = Number(values.seconds);
const threads = values.threads === undefined ? undefined : Number(values.threads);
await initEngine();

// Step 1: one big 3×3 convolution.
const input = tfl.input({ shape: [56, 56, 256] });
const conv = tfl.layers.conv2d({ filters: 256, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input) as tfl.SymbolicTensor;
const convModel = tfl.model({ inputs: input, outputs: conv });
const convRunner = await createForwardRunner(convModel, { runtime: 'ort', cacheDir: false, threads });
const convInput = randomInput(convRunner, 1);
const convTime = await medianSeconds(async () => void (await convRunner.run(convInput, 1)), seconds);
const convFlop = 2 * multiplyAdds(convModel);
const gflops = convFlop / convTime.median / 1e9;
await convRunner.dispose();
convModel.dispose();
console.log(`3×3 conv 56×56×256→256 on ONNX Runtime: ${(convTime.median * 1000).toFixed(1)} ms, ${gflops.toFixed(0)} GFLOP/s (${convTime.runs} runs)`);

const mhz = Number(/cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? NaN);
const peak = (threads ?? os.availableParallelism()) * mhz * 1e6 * 32 / 1e9;
console.log(`nominal fp32 peak: ${threads ?? os.availableParallelism()} cores × ${mhz.toFixed(0)} MHz × 32 FLOP/cycle = ${peak.toFixed(0)} GFLOP/s`);
const rows: { model: string; gflopPerImage: number; imgPerSec: number; gflops: number; ceilingImgPerSec: number; peakImgPerSec: number }[] = [];
console.log('| model | GFLOP per image | img/s (batch 1) | GFLOP/s achieved | img/s at the single conv\'s rate | img/s at nominal peak |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const name of values.models.split(',')) {
  const built = createModel(name, { numClasses: 3 });
  const runner = await createForwardRunner(built.model, { runtime: 'ort', cacheDir: false, threads });
  const x = randomInput(runner, 2);
  const time = await medianSeconds(async () => void (await runner.run(x, 1)), seconds);
  const gflopPerImage = (2 * multiplyAdds(built.model)) / 1e9;
  const imgPerSec = 1 / time.median;
  const row = { model: name, gflopPerImage, imgPerSec, gflops: imgPerSec * gflopPerImage, ceilingImgPerSec: gflops / gflopPerImage, peakImgPerSec: peak / gflopPerImage };
  rows.push(row);
  console.log(`| ${name} | ${gflopPerImage.toFixed(2)} | ${imgPerSec.toFixed(1)} | ${row.gflops.toFixed(0)} | ${row.ceilingImgPerSec.toFixed(1)} | ${row.peakImgPerSec.toFixed(1)} |`);
  await runner.dispose();
  disposeBuiltModel(built);
}

if (values.json) {
  writeJsonAtomicSync(values.json, {
    machine: { cpus: os.availableParallelism(), cpu: os.cpus()[0]?.model, node: process.version },
    threads: threads ?? 'default',
    conv3x3: { shape: '56×56×256→256', ms: convTime.median * 1000, gflops },
    nominalPeakGflops: peak,
    models: rows,
  });
}
