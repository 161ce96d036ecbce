// Runtime choice, the forward runners, and the export cache.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { initEngine, tf } from '../../src/engine/index.js';
import { PocovidError, UnknownChoiceError } from '../../src/errors.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';
import { cachedOnnxFile, modelFingerprint } from '../../src/onnx/cache.js';
import { chooseRuntime, createForwardRunner, createOrtSession, createTfjsRunner, loadOrt, parseRuntimeChoice, type OrtModule } from '../../src/onnx/runtime.js';
import { modelToOnnx } from '../../src/onnx/export.js';
import { createRng } from '../../src/util/rng.js';
import { maxAbsDiff, randomInput } from './helpers.js';

await initEngine();

const failingLoad = () => Promise.reject(new Error('binding not found\nsecond line'));
const built = createModel('grayscale_cnn', { numClasses: 3, inputSize: [32, 32], seed: 3 });
const x = randomInput(createRng(4), 2, [32, 32, 1]);
const cacheDir = mkdtempSync(join(tmpdir(), 'pocovid-onnx-cache-'));

afterAll(() => {
  disposeBuiltModel(built);
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('chooseRuntime', () => {
  it('rejects an unknown runtime, listing the valid ones', () => {
    expect(() => parseRuntimeChoice('gpu')).toThrow(UnknownChoiceError);
    expect(() => parseRuntimeChoice('gpu')).toThrow('unknown runtime "gpu"; valid: ort, tfjs, auto');
  });

  it('takes tfjs without loading ONNX Runtime', async () => {
    let loaded = false;
    const runtime = await chooseRuntime('tfjs', { load: async () => ((loaded = true), Promise.reject(new Error('no'))) });
    expect(runtime).toBe('tfjs');
    expect(loaded).toBe(false);
  });

  it('auto prefers ort where it loads', async () => {
    expect(await chooseRuntime('auto')).toBe('ort');
  });

  it('auto falls back to tfjs with a one-line notice', async () => {
    const notices: string[] = [];
    expect(await chooseRuntime('auto', { load: failingLoad, notice: (line) => notices.push(line) })).toBe('tfjs');
    expect(notices).toEqual(['notice: ONNX Runtime unavailable (binding not found); using TF.js']);
  });

  it('an explicit ort that does not load is an error', async () => {
    await expect(chooseRuntime('ort', { load: failingLoad })).rejects.toThrow(/ONNX Runtime \(onnxruntime-node\) does not load: binding not found/);
  });
});

describe('forward runners', () => {
  it('ort and tfjs give the same outputs, and the tfjs runner leaks no tensor', async () => {
    const tfjs = createTfjsRunner(built.model);
    const before = tf.memory().numTensors;
    const fromTfjs = await tfjs.run(x, 2);
    expect(tf.memory().numTensors).toBe(before);
    const ort = await createForwardRunner(built.model, { runtime: 'ort', cacheDir, threads: 1 });
    expect(ort.runtime).toBe('ort');
    expect(ort.inputShape).toEqual([32, 32, 1]);
    expect(ort.outputShapes).toEqual([[3]]);
    // A view into a larger buffer works as well as a fresh array.
    const padded = new Float32Array(x.length + 8);
    padded.set(x, 8);
    const fromOrt = await ort.run(padded.subarray(8), 2);
    expect(maxAbsDiff(fromOrt[0]!, fromTfjs[0]!)).toBeLessThanOrEqual(1e-5);
    await ort.dispose();
  });

  it('rejects a batch of the wrong size with the expected size', async () => {
    const ort = await createForwardRunner(built.model, { runtime: 'ort', cacheDir, threads: 1 });
    await expect(ort.run(new Float32Array(10), 2)).rejects.toThrow('batch has 10 values; 2 × [32, 32, 1] needs 2048');
    await expect(createTfjsRunner(built.model).run(x, 0)).rejects.toThrow(PocovidError);
    await ort.dispose();
  });

  it('auto runs a model the exporter cannot convert on TF.js, with a notice; ort refuses it', async () => {
    const input = tfl.input({ shape: [4, 4, 1], name: 'in' });
    const output = tfl.layers.upSampling2d({ size: [2, 2], name: 'up' }).apply(input) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: output, name: 'upsampler' });
    const notices: string[] = [];
    const runner = await createForwardRunner(model, { runtime: 'auto', cacheDir: false, notice: (line) => notices.push(line) });
    expect(runner.runtime).toBe('tfjs');
    expect(notices[0]).toMatch(/^notice: model "upsampler" cannot run on ONNX Runtime \(cannot export layer "up"/);
    await expect(createForwardRunner(model, { runtime: 'ort', cacheDir: false })).rejects.toThrow(/cannot export layer "up"/);
    model.dispose();
  });
});

describe('ONNX Runtime sessions', () => {
  it('are created with full optimisation, the asked threads, and spinning as asked', async () => {
    const seen: Record<string, unknown>[] = [];
    const real = await loadOrt();
    // The real module, with create() recording the options it is given.
    const recording = {
      ...real,
      InferenceSession: {
        create: (model: Uint8Array, options: Record<string, unknown>) => {
          seen.push(options);
          return real.InferenceSession.create(model, options);
        },
      },
    } as unknown as OrtModule;
    const bytes = modelToOnnx(built.model).bytes;
    for (const spinning of [undefined, false]) {
      const session = await createOrtSession(bytes, { threads: 1, spinning, load: async () => recording });
      // ORT accepts the setting: the session runs.
      const out = await session.run({ [session.inputNames[0]!]: new real.Tensor('float32', x.subarray(0, 32 * 32), [1, 32, 32, 1]) });
      expect(out[session.outputNames[0]!]!.dims).toEqual([1, 3]);
      await session.release();
    }
    const settings = (value: string) => ({ intraOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: value } } } });
    expect(seen).toMatchObject([settings('1'), settings('0')]);
  });
});

describe('export cache', () => {
  it('exports once per distinct weights', async () => {
    const dir = join(cacheDir, 'fresh');
    const first = await cachedOnnxFile(built.model, { cacheDir: dir });
    const written = statSync(first).ino;
    expect(await cachedOnnxFile(built.model, { cacheDir: dir })).toBe(first);
    expect(statSync(first).ino).toBe(written); // not rewritten
    // One ONNX file, and beside it the digest it is checked against before each use.
    expect(readdirSync(dir).sort()).toEqual([first, `${first}.sha256.json`].map((file) => file.slice(dir.length + 1)));

    const fingerprint = modelFingerprint(built.model);
    expect(modelFingerprint(built.model, 17)).not.toBe(fingerprint);
    const layer = built.model.getLayer('classifier');
    tf.tidy(() => {
      const [kernel, bias] = layer.getWeights();
      layer.setWeights([tf.add(kernel!, 0.01), bias!]);
    });
    expect(modelFingerprint(built.model)).not.toBe(fingerprint);
    const second = await cachedOnnxFile(built.model, { cacheDir: dir });
    expect(second).not.toBe(first);
    expect(readdirSync(dir).filter((name) => name.endsWith('.onnx')).sort()).toEqual([first, second].map((file) => file.slice(dir.length + 1)).sort());
  });
});
