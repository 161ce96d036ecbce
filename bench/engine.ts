// Engine micro-benchmark (not a test): GFLOP/s of the kernels training and inference spend their
// time in, on the wasm backend, and our replacement kernels against the package's own.
//   POCOVID_THREADS=1 npx tsx bench/engine.ts
//   POCOVID_THREADS=2 npx tsx bench/engine.ts
// Prints a table and, with --json, one JSON line per row.
import { initEngine, tf } from '../src/engine/index.js';
import { wasmKernel, type WasmBackendLike } from '../src/engine/kernels/wasm_ops.js';
import { createRng } from '../src/util/rng.js';

interface Row {
  name: string;
  threads: number;
  ms: number;
  gflops: number | null;
}

const rng = createRng(1);
const randomTensor = (shape: number[]): tf.Tensor =>
  tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);

/** Median wall time of `fn` (ms) after warm-up, over at least `minReps` runs and ~`budgetMs`. */
function timeIt(fn: () => void, budgetMs = 1500, minReps = 5): number {
  fn();
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minReps || performance.now() - start < budgetMs) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
    if (times.length >= 200) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** Times a registered kernel (ours where we registered one) through the engine. */
function viaEngine(kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>): () => void {
  return () => {
    const out = tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
    out.dispose();
  };
}

/** Times the wasm package's own kernel, bypassing ours. */
function viaPackage(kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>): () => void {
  const backend = tf.backend() as unknown as WasmBackendLike;
  return () => {
    const out = wasmKernel(kernel)({ inputs, backend, attrs: attrs as tf.NamedAttrMap });
    backend.disposeData((out as tf.TensorInfo).dataId);
  };
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const info = await initEngine();
  const rows: Row[] = [];
  const add = (name: string, flops: number | null, fn: () => void): void => {
    const ms = timeIt(fn);
    rows.push({ name, threads: info.threads, ms, gflops: flops === null ? null : flops / ms / 1e6 });
  };

  const x56 = randomTensor([1, 56, 56, 64]);
  const w3 = randomTensor([3, 3, 64, 64]);
  const dy56 = randomTensor([1, 56, 56, 64]);
  const dy28 = randomTensor([1, 28, 28, 64]);
  const convFlops = 2 * 56 * 56 * 64 * 64 * 9;
  add('conv2d 1×56×56×64, 3×3×64→64, s1 same', convFlops, () => tf.tidy(() => { tf.conv2d(x56 as tf.Tensor4D, w3 as tf.Tensor4D, 1, 'same').dataSync(); }));
  const m = randomTensor([512, 512]);
  add('matMul 512×512×512', 2 * 512 ** 3, () => tf.tidy(() => { tf.matMul(m as tf.Tensor2D, m as tf.Tensor2D).dataSync(); }));

  const inputGrad = { dy: dy56, filter: w3 };
  const inputAttrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [1, 56, 56, 64] };
  add('Conv2DBackpropInput s1 (package)', convFlops, viaPackage('Conv2DBackpropInput', inputGrad, inputAttrs));
  add('Conv2DBackpropInput s1 (ours)', convFlops, viaEngine('Conv2DBackpropInput', inputGrad, inputAttrs));
  const inputGrad2 = { dy: dy28, filter: w3 };
  const inputAttrs2 = { ...inputAttrs, strides: 2 };
  add('Conv2DBackpropInput s2 (package)', convFlops / 4, viaPackage('Conv2DBackpropInput', inputGrad2, inputAttrs2));
  add('Conv2DBackpropInput s2 (ours)', convFlops / 4, viaEngine('Conv2DBackpropInput', inputGrad2, inputAttrs2));
  add('Conv2DBackpropFilter s1 (ours; package has none)', convFlops,
    viaEngine('Conv2DBackpropFilter', { x: x56, dy: dy56 }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 64, 64] }));
  add('Conv2DBackpropFilter s2 (ours; package has none)', convFlops / 4,
    viaEngine('Conv2DBackpropFilter', { x: x56, dy: dy28 }, { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 64, 64] }));

  const a = randomTensor([1, 512, 512]);
  for (const [ta, tb] of [[true, false], [false, true]] as const) {
    const label = ta ? 'transposeA' : 'transposeB';
    add(`BatchMatMul 512³ ${label} (package)`, 2 * 512 ** 3, viaPackage('BatchMatMul', { a, b: a }, { transposeA: ta, transposeB: tb }));
    add(`BatchMatMul 512³ ${label} (ours)`, 2 * 512 ** 3, viaEngine('BatchMatMul', { a, b: a }, { transposeA: ta, transposeB: tb }));
  }

  const xd = randomTensor([1, 56, 56, 64]);
  const wd = randomTensor([3, 3, 64, 1]);
  const dwFlops = 2 * 56 * 56 * 64 * 9;
  add('DepthwiseConv2dNativeBackpropInput s1 (ours)', dwFlops,
    viaEngine('DepthwiseConv2dNativeBackpropInput', { dy: dy56, filter: wd }, { strides: 1, dilations: 1, pad: 'same', inputShape: [1, 56, 56, 64] }));
  add('DepthwiseConv2dNativeBackpropFilter s1 (ours)', dwFlops,
    viaEngine('DepthwiseConv2dNativeBackpropFilter', { x: xd, dy: dy56 }, { strides: 1, dilations: 1, pad: 'same', filterShape: [3, 3, 64, 1] }));

  const xp = randomTensor([1, 112, 112, 64]);
  const yp = tf.maxPool(xp as tf.Tensor4D, 3, 2, 'same');
  const poolAttrs = { filterSize: 3, strides: 2, pad: 'same' };
  add('MaxPoolGrad 1×112×112×64 3×3 s2 (package, wrong on ≤0)', null, viaPackage('MaxPoolGrad', { dy: dy56, input: xp, output: yp }, poolAttrs));
  add('MaxPoolGrad 1×112×112×64 3×3 s2 (ours)', null, viaEngine('MaxPoolGrad', { dy: dy56, input: xp, output: yp }, poolAttrs));

  if (json) {
    for (const row of rows) console.log(JSON.stringify(row));
    return;
  }
  console.log(`wasm backend, ${info.threads} thread(s)${info.warnings.length ? ` — ${info.warnings.join('; ')}` : ''}`);
  for (const row of rows) {
    const rate = row.gflops === null ? '' : `${row.gflops.toFixed(1).padStart(7)} GFLOP/s`;
    console.log(`${row.name.padEnd(56)} ${row.ms.toFixed(2).padStart(9)} ms ${rate}`);
  }
}

await main();
