// The exporter on small hand-built graphs that hit the layer set's corner cases: TF 'same' padding
// on odd sizes with stride 2 (asymmetric pads), dilation, depthwise multipliers, BatchNorm folded
// into convs with and without bias, BatchNorm that must not be folded (after an activation, an
// Add, a Dense, or a conv whose output is read twice), ReLU6, asymmetric zero padding, pooling with
// padding (also zero padding before pooling, which ONNX Runtime would fuse wrongly), Flatten of a
// map larger than 1×1 (NHWC order), and several outputs.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { initEngine, tf } from '../../src/engine/index.js';
import { PocovidError } from '../../src/errors.js';
import { exportOnnx, modelToOnnx } from '../../src/onnx/export.js';
import { decodeModel, DataType } from '../../src/onnx/onnx_proto.js';
import { createOrtRunnerFromSession, createOrtSession, createTfjsRunner } from '../../src/onnx/runtime.js';
import { createRng } from '../../src/util/rng.js';
import { maxAbs, maxAbsDiff, randomInput, randomizeBatchNorms, spread } from './helpers.js';

await initEngine();

type SymbolicTensor = tfl.SymbolicTensor;
type Layer = tfl.LayersModel['layers'][number];
const apply = (layer: Layer, x: SymbolicTensor | SymbolicTensor[]) => layer.apply(x) as SymbolicTensor;
const init = (seed: number) => tfl.initializers.glorotUniform({ seed });

/** 9×11 input: odd and non-square, so every 'same' with stride 2 pads unevenly. */
function cornerCaseModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [9, 11, 3], name: 'image' });
  let x = apply(tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'conv_bias', kernelInitializer: init(1), biasInitializer: tfl.initializers.randomNormal({ seed: 2 }) }), input);
  x = apply(tfl.layers.batchNormalization({ name: 'bn_fold_bias' }), x);
  x = apply(tfl.layers.reLU({ maxValue: 6, name: 'relu6' }), x);
  // 5×6 map from here.
  const dw = apply(tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, depthMultiplier: 2, padding: 'same', activation: 'relu', name: 'dw', depthwiseInitializer: init(3), biasInitializer: tfl.initializers.randomNormal({ seed: 4 }) }), x);
  const dwBn = apply(tfl.layers.batchNormalization({ name: 'bn_after_relu' }), dw);
  const side = apply(tfl.layers.conv2d({ filters: 8, kernelSize: 1, strides: 2, padding: 'valid', useBias: false, name: 'conv_nobias', kernelInitializer: init(5) }), x);
  const sideBn = apply(tfl.layers.batchNormalization({ epsilon: 1e-5, name: 'bn_fold_nobias' }), side);
  let y = apply(tfl.layers.add({ name: 'sum' }), [dwBn, sideBn]);
  y = apply(tfl.layers.batchNormalization({ name: 'bn_after_add' }), y);
  y = apply(tfl.layers.activation({ activation: 'tanh', name: 'tanh' }), y);
  // 3×3 map.
  const shared = apply(tfl.layers.conv2d({ filters: 6, kernelSize: 3, dilationRate: 2, padding: 'same', name: 'conv_shared', kernelInitializer: init(6) }), y);
  const sharedBn = apply(tfl.layers.batchNormalization({ name: 'bn_shared' }), shared);
  let z = apply(tfl.layers.zeroPadding2d({ padding: [[1, 0], [0, 2]], name: 'pad' }), sharedBn);
  z = apply(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'maxpool' }), z);
  z = apply(tfl.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: 'same', name: 'avgpool' }), z);
  z = apply(tfl.layers.activation({ activation: 'sigmoid', name: 'sigmoid' }), z);
  z = apply(tfl.layers.flatten({ name: 'flatten' }), z);
  z = apply(tfl.layers.dense({ units: 5, activation: 'relu', name: 'dense1', kernelInitializer: init(7) }), z);
  z = apply(tfl.layers.dropout({ rate: 0.5, name: 'dropout' }), z);
  z = apply(tfl.layers.batchNormalization({ name: 'bn_dense' }), z);
  z = apply(tfl.layers.dense({ units: 4, name: 'logits', kernelInitializer: init(8), biasInitializer: tfl.initializers.randomNormal({ seed: 9 }) }), z);
  const probabilities = apply(tfl.layers.softmax({ name: 'probabilities' }), z);
  const pooled = apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }), y);
  const pooledSoftmax = apply(tfl.layers.activation({ activation: 'softmax', name: 'gap_softmax' }), pooled);
  // A zero pad before an average pool: the padded zeros count in the average (see keepPadsBeforePools).
  let padded = apply(tfl.layers.zeroPadding2d({ padding: 1, name: 'pad_for_avg' }), sharedBn);
  padded = apply(tfl.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'valid', name: 'avg_of_padded' }), padded);
  // conv_shared is read by bn_shared and is also an output: it must keep its own (unfolded) value.
  return tfl.model({ inputs: input, outputs: [probabilities, shared, pooledSoftmax, padded], name: 'corner_cases' });
}

const BATCH = 3;
const model = cornerCaseModel();
const inputShape = [9, 11, 3];
const x = randomInput(createRng(21), BATCH, inputShape);
const batchNorms = randomizeBatchNorms(model, x, BATCH, 22);
const tmp = mkdtempSync(join(tmpdir(), 'pocovid-onnx-test-'));

afterAll(() => {
  model.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe('exporting the layer set', () => {
  it.each([11, 13, 17])('matches TF.js on every output at opset %i', async (opset) => {
    const { bytes, outputs } = modelToOnnx(model, { opset });
    expect(outputs.map((o) => o.name)).toEqual(model.outputNames);
    const session = await createOrtSession(bytes, { threads: 1 });
    const ort = await createOrtRunnerFromSession(session, inputShape, model.outputs.map((o) => o.shape.slice(1) as number[]));
    const fromOrt = await ort.run(x, BATCH);
    const fromTfjs = await createTfjsRunner(model).run(x, BATCH);
    await ort.dispose();
    expect(fromOrt.map((a) => a.length)).toEqual([BATCH * 4, BATCH * 3 * 3 * 6, BATCH * 8, BATCH * 3 * 3 * 6]);
    for (let i = 0; i < fromOrt.length; i++) {
      expect(spread(fromTfjs[i]!)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(fromOrt[i]!, fromTfjs[i]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(fromTfjs[i]!)));
    }
  });

  it('folds BatchNorm into the conv it directly follows, and only there', () => {
    expect(batchNorms).toBe(6);
    const graph = decodeModel(modelToOnnx(model).bytes).graph;
    const ops = graph.node.map((node) => node.opType);
    // bn_fold_bias and bn_fold_nobias vanish into their convs; the other four are Mul + Add.
    expect(ops.filter((op) => op === 'Mul')).toHaveLength(4);
    const noBiasConv = graph.node.find((node) => node.opType === 'Conv' && node.input[1]!.startsWith('conv_nobias'))!;
    expect(noBiasConv.input).toHaveLength(3); // the folded BatchNorm gave it a bias
    // Explicit TF pads: 9×11 with k3 s2 'same' → rows (1, 1), cols (1, 1); 5×6 → rows (1, 1), cols (0, 1).
    const pads = (name: string) => graph.node.find((node) => node.input[1]?.startsWith(name))!.attribute.find((a) => a.name === 'pads')!.ints;
    expect(pads('conv_bias')).toEqual([1, 1, 1, 1]);
    expect(pads('dw')).toEqual([1, 0, 1, 1]);
  });

  it('writes NHWC inputs with a symbolic batch and float32 raw initializers', () => {
    const decoded = decodeModel(modelToOnnx(model, { opset: 13 }).bytes);
    expect(decoded.irVersion).toBe(7);
    expect(decoded.opsetImport).toEqual([{ domain: '', version: 13 }]);
    const input = decoded.graph.input[0]!;
    expect(input.name).toBe('image');
    expect(input.type.tensorType.shape?.dim).toEqual([{ dimParam: 'batch' }, { dimValue: 9 }, { dimValue: 11 }, { dimValue: 3 }]);
    expect(decoded.graph.output.map((o) => o.name)).toEqual(model.outputNames);
    const kernel = decoded.graph.initializer.find((t) => t.name === 'logits_kernel')!;
    expect(kernel.dataType).toBe(DataType.FLOAT);
    expect(kernel.dims).toEqual([5, 4]);
    const expected = model.getLayer('logits').getWeights()[0]!.dataSync() as Float32Array;
    expect(new Float32Array(Uint8Array.from(kernel.rawData!).buffer)).toEqual(expected);
  });

  it('exportOnnx writes the file atomically', async () => {
    const file = join(tmp, 'sub', 'corner.onnx');
    const result = await exportOnnx(model, file);
    expect(existsSync(file)).toBe(true);
    expect(Buffer.compare(readFileSync(file), result.bytes)).toBe(0);
    expect(readdirSync(join(tmp, 'sub'))).toEqual(['corner.onnx']);
  });
});

describe('export errors', () => {
  it('rejects an opset outside the supported range', () => {
    expect(() => modelToOnnx(model, { opset: 9 })).toThrow(/opset must be an integer from 11 to 21, got 9/);
  });

  it('names a layer it cannot convert and lists the supported ones', () => {
    const input = tfl.input({ shape: [4, 4, 2], name: 'in' });
    const up = tfl.layers.upSampling2d({ size: [2, 2], name: 'upsample' }).apply(input) as SymbolicTensor;
    const unsupported = tfl.model({ inputs: input, outputs: up });
    expect(() => modelToOnnx(unsupported)).toThrow(PocovidError);
    expect(() => modelToOnnx(unsupported)).toThrow(/layer "upsample" \(UpSampling2D\).*supported layers: .*Conv2D/);
    unsupported.dispose();
  });

  it('names an unsupported activation', () => {
    const input = tfl.input({ shape: [4, 4, 2], name: 'in' });
    const conv = tfl.layers.conv2d({ filters: 2, kernelSize: 1, activation: 'elu', name: 'elu_conv' }).apply(input) as SymbolicTensor;
    const unsupported = tfl.model({ inputs: input, outputs: conv });
    expect(() => modelToOnnx(unsupported)).toThrow(/layer "elu_conv" \(Conv2D\) to ONNX: activation "elu"/);
    unsupported.dispose();
  });

  it('does not leak tensors', () => {
    const before = tf.memory().numTensors;
    modelToOnnx(model);
    expect(tf.memory().numTensors).toBe(before);
  });
});
