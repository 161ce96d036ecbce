// int8 against fp32 on a cross-validation's own folds: each fold's model is calibrated on frames
// of its training folds only, then both graphs classify the fold's test frames.
//   npx tsx bench/int8_accuracy.ts --run runs/cv_vgg16_patient --data runs/pocus_patient \
//     [--calibration-frames 100] [--seed 0] [--folds 0,1,2,3,4] [--full-range] [--json out.json]
// Reports per fold and pooled: frame and video accuracy (video = mean probability over its
// frames), balanced accuracy, how often the two graphs agree on the label, the largest and mean
// change of a probability, and ms per frame for each graph (batch 1).
import { preprocessorFor } from '../src/models/preprocess.js';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDataset } from '../src/data/dataset.js';
import { readImageAsInput } from '../src/data/image.js';
import type { ManifestRow } from '../src/data/types.js';
import { initEngine } from '../src/engine/index.js';
import { argMax } from '../src/decision/combine.js';
import { loadModelDir } from '../src/model_dir/model_dir.js';
import { quantizeModel } from '../src/onnx/calibrate.js';
import { createOrtRunner, type ForwardRunner } from '../src/onnx/runtime.js';
import { modelToOnnx } from '../src/onnx/export.js';
import { writeJsonAtomicSync } from '../src/util/atomic.js';
import { createRng } from '../src/util/rng.js';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    data: { type: 'string' },
    'calibration-frames': { type: 'string', default: '100' },
    seed: { type: 'string', default: '0' },
    folds: { type: 'string' },
    'full-range': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
if (!values.run || !values.data) throw new Error('usage: bench/int8_accuracy.ts --run <cv run> --data <dataset> [--calibration-frames N] [--json out.json]');

interface Scored {
  label: string;
  source: string;
  fp32: Float32Array;
  int8: Float32Array;
}

function accuracy(items: { truth: number; predicted: number }[], classes: number): { accuracy: number; balanced: number } {
  const correct = items.filter((i) => i.truth === i.predicted).length;
  const recalls: number[] = [];
  for (let k = 0; k < classes; k++) {
    const of = items.filter((i) => i.truth === k);
    if (of.length > 0) recalls.push(of.filter((i) => i.predicted === k).length / of.length);
  }
  return { accuracy: correct / items.length, balanced: recalls.reduce((a, b) => a + b, 0) / recalls.length };
}

function summarise(scored: Scored[], classes: string[]) {
  const frame = (key: 'fp32' | 'int8') => accuracy(scored.map((s) => ({ truth: classes.indexOf(s.label), predicted: argMax(s[key]) })), classes.length);
  const videos = new Map<string, Scored[]>();
  for (const s of scored) videos.set(s.source, [...(videos.get(s.source) ?? []), s]);
  const video = (key: 'fp32' | 'int8') =>
    accuracy(
      [...videos.values()].map((frames) => {
        const mean = new Float64Array(classes.length);
        for (const f of frames) for (let k = 0; k < classes.length; k++) mean[k]! += f[key][k]! / frames.length;
        return { truth: classes.indexOf(frames[0]!.label), predicted: argMax(mean) };
      }),
      classes.length,
    );
  let maxChange = 0;
  let sumChange = 0;
  let agree = 0;
  for (const s of scored) {
    if (argMax(s.fp32) === argMax(s.int8)) agree++;
    for (let k = 0; k < classes.length; k++) {
      const d = Math.abs(s.fp32[k]! - s.int8[k]!);
      maxChange = Math.max(maxChange, d);
      sumChange += d;
    }
  }
  return {
    frames: scored.length,
    videos: videos.size,
    fp32: { frame: frame('fp32'), video: video('fp32') },
    int8: { frame: frame('int8'), video: video('int8') },
    labelAgreement: agree / scored.length,
    maxProbabilityChange: maxChange,
    meanProbabilityChange: sumChange / (scored.length * classes.length),
  };
}

async function classify(runner: ForwardRunner, inputs: Float32Array[]): Promise<{ outputs: Float32Array[]; msPerFrame: number }> {
  const outputs: Float32Array[] = [];
  const start = performance.now();
  for (const input of inputs) outputs.push((await runner.run(input, 1))[0]!.slice());
  return { outputs, msPerFrame: (performance.now() - start) / inputs.length };
}

async function main(): Promise<void> {
  await initEngine();
  const dataset = openDataset(values.data!);
  const calibrationFrames = Number(values['calibration-frames']);
  const seed = Number(values.seed);
  const foldIds = values.folds ? values.folds.split(',').map(Number) : [...new Set(dataset.rows.map((r) => r.fold))].sort((a, b) => a - b);
  const machine = `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} logical cores`;
  const perFold: Record<string, unknown>[] = [];
  const pooled: Scored[] = [];
  let classes: string[] = [];
  for (const fold of foldIds) {
    const loaded = await loadModelDir(join(values.run!, `fold-${fold}`, 'model'));
    const model = loaded.members[0]!;
    classes = loaded.meta.classes;
    const cfg = loaded.meta.cfg;
    const read = (rows: readonly ManifestRow[]) => Promise.all(rows.map((r) => readImageAsInput(join(dataset.dir, r.path), preprocessorFor(cfg))));
    // Calibration frames come from the training folds only: the test fold stays unseen.
    const training = dataset.rows.filter((r) => r.fold !== fold);
    const calibrationRows = createRng(seed + fold).shuffle([...training]).slice(0, calibrationFrames);
    const test = dataset.rows.filter((r) => r.fold === fold);
    const t0 = performance.now();
    const int8 = await quantizeModel(model, await read(calibrationRows), { reduceRange: !values['full-range'] });
    const calibrationSeconds = (performance.now() - t0) / 1000;
    const fp32Runner = await createOrtRunner(model, modelToOnnx(model).bytes);
    const int8Runner = await createOrtRunner(model, int8.result.bytes);
    const inputs = await read(test);
    const a = await classify(fp32Runner, inputs);
    const b = await classify(int8Runner, inputs);
    await fp32Runner.dispose();
    await int8Runner.dispose();
    model.dispose();
    const scored = test.map((r, i) => ({ label: r.label, source: r.source, fp32: a.outputs[i]!, int8: b.outputs[i]! }));
    pooled.push(...scored);
    const row = { fold, calibrationFrames: int8.frames, calibrationSeconds, msPerFrame: { fp32: a.msPerFrame, int8: b.msPerFrame }, ...summarise(scored, classes) };
    perFold.push(row);
    console.log(JSON.stringify(row));
  }
  const result = { machine, run: values.run, data: values.data, seed, calibrationFrames, reduceRange: !values['full-range'], classes, folds: perFold, pooled: summarise(pooled, classes) };
  console.log(JSON.stringify(result.pooled, null, 2));
  if (values.json) writeJsonAtomicSync(values.json, result);
}

await main();
