// ONNX Runtime sessions used in turn, with intra-op thread spinning on (ORT's default) and off
// (createOrtSession's setting): ms per run when the sessions take turns frame by frame (a fold
// ensemble in predict) and when each runs alone.
//   npx tsx bench/ort_spinning.ts [--model resnet18] [--size 112] [--sessions 3] [--runs 30]
import os from 'node:os';
import { parseArgs } from 'node:util';
import { initEngine } from '../src/engine/index.js';
import { createModel, disposeBuiltModel } from '../src/models/index.js';
import { modelToOnnx } from '../src/onnx/export.js';
import { defaultOrtThreads, loadOrt } from '../src/onnx/runtime.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet18' },
    size: { type: 'string', default: '112' },
    sessions: { type: 'string', default: '3' },
    runs: { type: 'string', default: '30' },
  },
});

await initEngine();
const ort = await loadOrt();
const size = Number(values.size);
const count = Number(values.sessions);
const runs = Number(values.runs);
const built = createModel(values.model!, { numClasses: 3, inputSize: [size, size] });
const channels = built.model.inputs[0]!.shape[3]!;
const bytes = modelToOnnx(built.model).bytes;
disposeBuiltModel(built);
const input = new ort.Tensor('float32', new Float32Array(size * size * channels).fill(0.3), [1, size, size, channels]);
console.log(`# ${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} logical cores; ${values.model} at ${size}², ${count} sessions, ${defaultOrtThreads()} intra-op threads each`);
console.log('| spinning | sessions in turn, ms/run | one session at a time, ms/run |\n|---|---:|---:|');
for (const spinning of ['1', '0']) {
  const sessions: Awaited<ReturnType<typeof ort.InferenceSession.create>>[] = [];
  for (let i = 0; i < count; i++) {
    sessions.push(
      await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: defaultOrtThreads(),
        graphOptimizationLevel: 'all',
        extra: { session: { intra_op: { allow_spinning: spinning } } },
      }),
    );
  }
  const run = (session: (typeof sessions)[number]) => session.run({ [session.inputNames[0]!]: input });
  for (const session of sessions) await run(session); // warm-up
  let started = performance.now();
  for (let r = 0; r < runs; r++) for (const session of sessions) await run(session);
  const inTurn = (performance.now() - started) / (runs * count);
  started = performance.now();
  for (const session of sessions) for (let r = 0; r < runs; r++) await run(session);
  const alone = (performance.now() - started) / (runs * count);
  console.log(`| ${spinning === '1' ? 'on (ORT default)' : 'off (pocovid)'} | ${inTurn.toFixed(1)} | ${alone.toFixed(1)} |`);
  for (const session of sessions) await session.release();
}
