// Smaller weights for the page, checked on real frames: a run is exported as float32 and as each
// smaller storage (`export --weights-dtype`), and every model folder classifies the same frames of
// a dataset through the CLI's pipeline (ONNX Runtime, no guard). Reports, per storage, how often
// the label equals float32's, the largest and mean change of a probability, and the bytes of the
// member weight files.
//   npx tsx bench/weight_dtype.ts --run runs/cv_default_patient/seed-0 --data runs/pocus_patient_v3 \
//     [--every 4] [--dtypes float16,uint8] [--json out.json]
// The export is the run's fold ensemble, as `pocovid export --run` makes it for the page (frozen
// BatchNorm folded into its convolution); the reference is the run's exact float32 model, unfolded.
// `--every k` takes every k-th frame of the manifest.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDataset } from '../src/data/dataset.js';
import { argMax } from '../src/decision/combine.js';
import { exportRun } from '../src/infer/export.js';
import { createPipeline } from '../src/infer/pipeline.js';
import { SHARED_WEIGHTS_FILE } from '../src/model_dir/names.js';
import { WEIGHT_DTYPES, type WeightDtype } from '../src/model_dir/weight_dtype.js';
import { writeJsonAtomicSync } from '../src/util/atomic.js';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    data: { type: 'string' },
    every: { type: 'string', default: '4' },
    dtypes: { type: 'string', default: 'float16,uint8' },
    json: { type: 'string' },
  },
});
if (!values.run || !values.data) throw new Error('usage: bench/weight_dtype.ts --run <run> --data <dataset> [--every k] [--dtypes float16,uint8] [--json out.json]');
const every = Number(values.every);
if (!Number.isInteger(every) || every < 1) throw new Error(`--every must be a whole number ≥ 1, got ${values.every}`);
const dtypes = values.dtypes.split(',') as WeightDtype[];
for (const d of dtypes) if (!WEIGHT_DTYPES.includes(d) || d === 'float32') throw new Error(`--dtypes: ${d} is not one of float16, uint8`);

/** Bytes of weights a loader reads: every member's .bin and the members' shared-weights.bin, stored once. */
async function weightBytes(folder: string): Promise<number> {
  let total = existsSync(join(folder, SHARED_WEIGHTS_FILE)) ? (await stat(join(folder, SHARED_WEIGHTS_FILE))).size : 0;
  for (const member of (await readdir(folder)).filter((n) => n.startsWith('member-'))) {
    for (const file of (await readdir(join(folder, member))).filter((n) => n.endsWith('.bin'))) total += (await stat(join(folder, member, file))).size;
  }
  return total;
}

async function classify(folder: string, files: string[]): Promise<number[][]> {
  const pipeline = await createPipeline(folder, { runtime: 'ort', guard: false, onnxCacheDir: false });
  try {
    const out: number[][] = [];
    for (const file of files) {
      const result = await pipeline.predictFile(file);
      out.push(Object.values(result.probabilities!));
    }
    return out;
  } finally {
    await pipeline.dispose();
  }
}

const dataset = openDataset(values.data);
const files = dataset.rows.filter((_, i) => i % every === 0).map((row) => join(values.data!, row.path));
const work = await mkdtemp(join(tmpdir(), 'pocovid-weight-dtype-'));
try {
  // The reference: the run's exact model (float32, BatchNorm not folded); the others as export writes them.
  await exportRun(values.run, join(work, 'float32'), { page: false, foldBatchNorm: false });
  const reference = await classify(join(work, 'float32'), files);
  const referenceBytes = await weightBytes(join(work, 'float32'));
  const rows = [];
  for (const dtype of dtypes) {
    const folder = join(work, dtype);
    await exportRun(values.run, folder, { page: false, weightsDtype: dtype });
    const probabilities = await classify(folder, files);
    let agree = 0;
    let maxChange = 0;
    let sumChange = 0;
    let count = 0;
    probabilities.forEach((p, i) => {
      if (argMax(p) === argMax(reference[i]!)) agree++;
      p.forEach((v, k) => {
        const d = Math.abs(v - reference[i]![k]!);
        maxChange = Math.max(maxChange, d);
        sumChange += d;
        count++;
      });
    });
    rows.push({ dtype, frames: files.length, labelAgreement: agree / files.length, maxProbabilityChange: maxChange, meanProbabilityChange: sumChange / count, weightMB: (await weightBytes(folder)) / 1e6 });
  }
  const report = { run: values.run, data: values.data, every, frames: files.length, float32WeightMB: referenceBytes / 1e6, dtypes: rows };
  console.log(`${files.length} frames (every ${every}th of ${values.data}), ${values.run} exported as its fold ensemble; float32 weights ${(referenceBytes / 1e6).toFixed(1)} MB`);
  console.log('| storage | weights MB | labels equal to float32 | largest Δp | mean Δp |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.dtype} | ${r.weightMB.toFixed(1)} | ${(100 * r.labelAgreement).toFixed(2)}% | ${r.maxProbabilityChange.toFixed(4)} | ${r.meanProbabilityChange.toFixed(5)} |`);
  if (values.json) writeJsonAtomicSync(values.json, report);
} finally {
  await rm(work, { recursive: true, force: true });
}
