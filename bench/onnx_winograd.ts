// Experiment: can a 3×3 stride-1 'same' convolution written as Winograd F(2×2, 3×3) in plain ONNX
// ops (grouped 4×4 conv for the input transform, 16 batched MatMuls, a MatMul for the output
// transform) beat ONNX Runtime's own Conv? It needs 2.25× fewer multiplications.
//   npx tsx bench/onnx_winograd.ts [C] [K] [H]      (default 256 256 56: VGG-16 block3)
// Measured on the project's machine: no (256→256 at 56²: 52 ms direct vs 80–94 ms Winograd;
// 512→512 at 28²: 52–54 ms vs 52–58 ms); the transposes and the grouped conv eat the saving.
import { OnnxGraphBuilder } from '../src/onnx/graph_builder.js';
import { encodeModel } from '../src/onnx/onnx_proto.js';
import { createOrtSession, loadOrt } from '../src/onnx/runtime.js';
import { createRng } from '../src/util/rng.js';
const [C, K, H] = [Number(process.argv[2] ?? 256), Number(process.argv[3] ?? 256), Number(process.argv[4] ?? 56)];
const N = 1, T = H / 2;
const rng = createRng(0);
const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => rng.uniform(-s, s));
const w = rand(K * C * 9, 0.05); // OIHW
const bias = rand(K, 0.1);
function model(build: (b: OnnxGraphBuilder) => string) {
  const b = new OnnxGraphBuilder();
  b.addInput('x', [N, C, H, H]);
  const out = build(b);
  b.addNode('Identity', [out], 'y');
  b.addOutput('y', [N, K, H, H]);
  return encodeModel({ irVersion: 7, producerName: 'pocovid-bench', producerVersion: '0', opsetImport: [{ domain: '', version: 13 }], graph: b.build('g') });
}
const direct = model((b) => {
  const W = b.addFloatInitializer('w', [K, C, 3, 3], w);
  const B = b.addFloatInitializer('b', [K], bias);
  b.addNode('Conv', ['x', W, B], 'c', { pads: [1, 1, 1, 1], kernel_shape: [3, 3] });
  b.addNode('Relu', ['c'], 'r');
  return 'r';
});
const BT = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]];
const G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]];
const AT = [[1, 1, 1, 0], [0, 1, -1, -1]];
const wino = model((b) => {
  // input transform as a grouped 4×4 stride-2 conv, 16 outputs per channel
  const tin = new Float32Array(C * 16 * 16);
  for (let c = 0; c < C; c++) for (let xi = 0; xi < 4; xi++) for (let nu = 0; nu < 4; nu++)
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) tin[((c * 16 + xi * 4 + nu) * 4 + i) * 4 + j] = BT[xi]![i]! * BT[nu]![j]!;
  const Tin = b.addFloatInitializer('tin', [C * 16, 1, 4, 4], tin);
  b.addNode('Conv', ['x', Tin], 'v', { pads: [1, 1, 1, 1], kernel_shape: [4, 4], strides: [2, 2], group: C });
  b.addNode('Reshape', ['v', b.addInt64Initializer('s1', [N, C, 16, T * T])], 'v1');
  b.addNode('Transpose', ['v1'], 'v2', { perm: [2, 0, 3, 1] });
  b.addNode('Reshape', ['v2', b.addInt64Initializer('s2', [16, N * T * T, C])], 'v3');
  const U = new Float32Array(16 * C * K);
  for (let k = 0; k < K; k++) for (let c = 0; c < C; c++) {
    const g = (r: number, s: number) => w[((k * C + c) * 3 + r) * 3 + s]!;
    for (let xi = 0; xi < 4; xi++) for (let nu = 0; nu < 4; nu++) {
      let v = 0;
      for (let r = 0; r < 3; r++) for (let s = 0; s < 3; s++) v += G[xi]![r]! * g(r, s) * G[nu]![s]!;
      U[((xi * 4 + nu) * C + c) * K + k] = v;
    }
  }
  b.addNode('MatMul', ['v3', b.addFloatInitializer('u', [16, C, K], U)], 'm');
  b.addNode('Reshape', ['m', b.addInt64Initializer('s3', [16, N * T * T * K])], 'm1');
  const AA = new Float32Array(4 * 16);
  for (let a = 0; a < 2; a++) for (let bb = 0; bb < 2; bb++) for (let xi = 0; xi < 4; xi++) for (let nu = 0; nu < 4; nu++) AA[(a * 2 + bb) * 16 + xi * 4 + nu] = AT[a]![xi]! * AT[bb]![nu]!;
  b.addNode('MatMul', [b.addFloatInitializer('aa', [4, 16], AA), 'm1'], 'y0');
  b.addNode('Reshape', ['y0', b.addInt64Initializer('s4', [2, 2, N, T, T, K])], 'y1');
  b.addNode('Transpose', ['y1'], 'y2', { perm: [2, 5, 3, 0, 4, 1] });
  b.addNode('Reshape', ['y2', b.addInt64Initializer('s5', [N, K, H, H])], 'y3');
  b.addNode('Add', ['y3', b.addFloatInitializer('bb', [1, K, 1, 1], bias)], 'y4');
  b.addNode('Relu', ['y4'], 'r');
  return 'r';
});
const ort = await loadOrt();
const sd = await createOrtSession(direct), sw = await createOrtSession(wino);
const x = new ort.Tensor('float32', rand(N * C * H * H), [N, C, H, H]);
const yd = (await sd.run({ x })).y!.data as Float32Array, yw = (await sw.run({ x })).y!.data as Float32Array;
let err = 0, mag = 0; for (let i = 0; i < yd.length; i++) { err = Math.max(err, Math.abs(yd[i]! - yw[i]!)); mag = Math.max(mag, Math.abs(yd[i]!)); }
console.log('max err', err, 'max |y|', mag);
for (let round = 0; round < 2; round++) for (const [name, s] of [['direct', sd], ['winograd', sw]] as const) {
  const t = performance.now(); for (let i = 0; i < 10; i++) await s.run({ x }); const ms = (performance.now() - t) / 10;
  console.log(name, ms.toFixed(2), 'ms', (2 * 9 * C * K * H * H / ms / 1e6).toFixed(0), 'eff. GFLOP/s');
}
