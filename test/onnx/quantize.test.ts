// int8 quantisation (QDQ form): which values are quantised, the uint8/int8 arithmetic, that ONNX
// Runtime really fuses every convolution into QLinearConv (the point of it), and that the int8
// graph stays close to the float one.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';
import { calibrateRanges, leastSquaredErrorRange, quantizeModel } from '../../src/onnx/calibrate.js';
import { draftOnnxGraph, modelToOnnx } from '../../src/onnx/export.js';
import { DataType, decodeModel, type ModelMessage } from '../../src/onnx/onnx_proto.js';
import { quantizationPoints, quantizedModelToOnnx, uint8Params } from '../../src/onnx/quantize.js';
import { loadOrt } from '../../src/onnx/runtime.js';
import { createRng } from '../../src/util/rng.js';
import { maxAbsDiff } from './helpers.js';

await initEngine();
const ort = await loadOrt();
const dir = mkdtempSync(join(tmpdir(), 'pocovid-int8-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A residual block in miniature: conv-relu, conv, add, relu, then a dense softmax head. */
function residualModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [12, 12, 3], name: 'image' });
  const a = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'first' }).apply(input) as tfl.SymbolicTensor;
  const b = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'second' }).apply(a) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'sum' }).apply([a, b]) as tfl.SymbolicTensor;
  const relu = tfl.layers.reLU({ name: 'sum_relu' }).apply(sum) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(relu) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'probs' }).apply(pooled) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'residual' });
}

function uniformFrames(n: number, shape: readonly number[], seed: number, lo = 0, hi = 1): Float32Array[] {
  const rng = createRng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return Array.from({ length: n }, () => Float32Array.from({ length: size }, () => rng.uniform(lo, hi)));
}

/** The graph ONNX Runtime actually runs (after its optimisations), decoded. */
async function optimisedGraph(bytes: Uint8Array, name: string): Promise<ModelMessage> {
  const file = join(dir, `${name}.optimised.onnx`);
  // 'all', as createOrtSession runs it (ORT warns that such a saved graph suits this CPU only).
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', optimizedModelFilePath: file, intraOpNumThreads: 1, logSeverityLevel: 3 });
  await session.release();
  return decodeModel(readFileSync(file));
}

const opCounts = (model: ModelMessage): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const node of model.graph.node) counts.set(node.opType, (counts.get(node.opType) ?? 0) + 1);
  return counts;
};

async function runOnnx(bytes: Uint8Array, frames: Float32Array[], shape: number[]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const outputs: Float32Array[] = [];
  for (const frame of frames) {
    const result = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', frame, [1, ...shape]) });
    outputs.push((result[session.outputNames[0]!]!.data as Float32Array).slice());
  }
  await session.release();
  return outputs;
}

describe('quantisation points', () => {
  it('are each conv input, each conv output after its activation, and a sum of two quantised values', () => {
    const model = residualModel();
    const { builder } = draftOnnxGraph(model);
    const nodes = builder.allNodes();
    const producer = (value: string) => nodes.find((node) => node.output.includes(value))!;
    const points = quantizationPoints(nodes);
    // The transposed input, the first conv's Relu, the second conv (no activation), the sum's Relu.
    expect(points.map((p) => producer(p).opType)).toEqual(['Transpose', 'Relu', 'Conv', 'Relu']);
    expect(producer(points[3]!).input[0]).toBe(nodes.find((n) => n.opType === 'Add')!.output[0]);
    // Keeping the second conv in float leaves its output and the sum unquantised.
    expect(quantizationPoints(nodes, new Set(['second'])).map((p) => producer(p).opType)).toEqual(['Transpose', 'Relu']);
    model.dispose();
  });
});

describe('uint8 parameters', () => {
  it('cover the range and represent 0 exactly', () => {
    const p = uint8Params({ min: -1, max: 3 });
    expect(p.scale).toBeCloseTo(4 / 255, 12);
    expect(p.zeroPoint).toBe(64);
    expect(p.scale * (0 - p.zeroPoint)).toBeCloseTo(-1, 2);
    expect(p.scale * (255 - p.zeroPoint)).toBeCloseTo(3, 1);
    // A range above 0 is stretched down to it (ReLU outputs, zero padding).
    expect(uint8Params({ min: 0.5, max: 2 })).toEqual({ scale: 2 / 255, zeroPoint: 0 });
    expect(uint8Params({ min: 0, max: 0 })).toEqual({ scale: 1, zeroPoint: 0 });
    expect(() => uint8Params({ min: -Infinity, max: 1 })).toThrow('calibration range [-Infinity, 1] is not finite');
  });

  it('least squared error keeps the whole range for even values and clips a rare outlier', () => {
    const even = new Float64Array(2048).fill(10);
    expect(leastSquaredErrorRange({ min: 0, max: 8 }, even)).toEqual({ min: 0, max: 8 });
    // 1.28 million values in [0, 0.5) and one at 8.
    const histogram = new Float64Array(2048);
    histogram.fill(1e4, 0, 128);
    histogram[2047] = 1;
    const binWidth = 8 / 2048;
    // Squared error of quantising every histogrammed value (at its bin centre) into `range`, in
    // the plain arithmetic of QuantizeLinear → DequantizeLinear.
    const squaredError = (range: { min: number; max: number }): number => {
      const scale = (range.max - range.min) / 255;
      const zero = Math.round(-range.min / scale);
      let error = 0;
      histogram.forEach((count, b) => {
        const value = (b + 0.5) * binWidth;
        const restored = (Math.min(255, Math.max(0, Math.round(value / scale) + zero)) - zero) * scale;
        error += count * (restored - value) ** 2;
      });
      return error;
    };
    const chosen = leastSquaredErrorRange({ min: 0, max: 8 }, histogram);
    expect(chosen.min).toBe(0);
    expect(chosen.max).toBeLessThan(8); // the outlier is clipped
    for (const max of [8, 6, 4, 2, 1, 0.5, 0.25]) expect(squaredError(chosen)).toBeLessThanOrEqual(squaredError({ min: 0, max }));
  });
});

describe('calibration', () => {
  it('min–max ranges are the extremes of what the graph computes', async () => {
    const model = residualModel();
    const frames = uniformFrames(3, [12, 12, 3], 1, -2, 5);
    const { ranges, frames: seen, method } = await calibrateRanges(model, frames, { method: 'minmax', threads: 1 });
    expect(seen).toBe(3);
    expect(method).toBe('minmax');
    const all = frames.flatMap((f) => Array.from(f));
    const inputRange = [...ranges.values()][0]!;
    expect(inputRange.min).toBe(Math.min(...all));
    expect(inputRange.max).toBe(Math.max(...all));
    // The first conv's output is a ReLU: nothing below 0, and it saw positive values.
    const relu = [...ranges.values()][1]!;
    expect(relu.min).toBe(0);
    expect(relu.max).toBeGreaterThan(0);
    model.dispose();
  });

  it('names a frame of the wrong size, and refuses none', async () => {
    const model = residualModel();
    await expect(calibrateRanges(model, [new Float32Array(10)])).rejects.toThrow('calibration frame 0: 10 values, the model takes [12, 12, 3] = 432');
    await expect(calibrateRanges(model, [])).rejects.toThrow('calibration needs at least one frame');
    await expect(calibrateRanges(model, uniformFrames(1, [12, 12, 3], 1), { method: 'kmeans' as never })).rejects.toThrow('unknown calibration method "kmeans"');
    model.dispose();
  });
});

describe('the int8 graph', () => {
  it('stores int8 weights per output channel within half a step, and int32 biases at input × weight scale', async () => {
    const model = residualModel();
    const frames = uniformFrames(2, [12, 12, 3], 2);
    for (const reduceRange of [true, false]) {
      const { result, ranges } = await quantizeModel(model, frames, { reduceRange, threads: 1 });
      const decoded = decodeModel(result.bytes);
      const init = (name: string) => decoded.graph.initializer.find((t) => t.name === name)!;
      // A copy: decoded bytes may be a view into a larger (pooled) buffer.
      const buffer = (name: string) => new Uint8Array(init(name).rawData!).buffer;
      const weightQ = init('first_weight_int8');
      expect(weightQ.dataType).toBe(DataType.INT8);
      const q = new Int8Array(buffer('first_weight_int8'));
      const scales = new Float32Array(buffer('first_weight_scale'));
      const limit = reduceRange ? 63 : 127;
      expect(Math.max(...Array.from(q, Math.abs))).toBe(limit); // the largest weight of some channel maps to the limit
      const kernel = model.getLayer('first').getWeights()[0]!.dataSync(); // HWIO [3, 3, 3, 4]
      // OIHW index of output o, input i, y, x.
      for (let o = 0; o < 4; o++)
        for (let i = 0; i < 3; i++)
          for (let y = 0; y < 3; y++)
            for (let x = 0; x < 3; x++) {
              const original = kernel[((y * 3 + x) * 3 + i) * 4 + o]!;
              const restored = q[((o * 3 + i) * 3 + y) * 3 + x]! * scales[o]!;
              expect(Math.abs(restored - original)).toBeLessThanOrEqual(scales[o]! / 2 + 1e-7);
            }
      const bias = init('first_bias_int32');
      expect(bias.dataType).toBe(DataType.INT32);
      const biasScales = new Float32Array(buffer('first_bias_scale'));
      const inputScale = uint8Params([...ranges.values()][0]!).scale;
      for (let o = 0; o < 4; o++) expect(biasScales[o]).toBeCloseTo(inputScale * scales[o]!, 10);
      expect(decoded.graph.initializer.some((t) => t.name === 'first_weight')).toBe(false); // the float weights are gone
    }
    model.dispose();
  });

  it('needs opset 13 (per-channel DequantizeLinear) and names unknown float layers', async () => {
    const model = residualModel();
    const { ranges } = await calibrateRanges(model, uniformFrames(1, [12, 12, 3], 3), { threads: 1 });
    expect(() => quantizedModelToOnnx(model, ranges, { opset: 12 })).toThrow('int8 quantisation needs ONNX opset 13 or newer, got 12');
    expect(() => quantizedModelToOnnx(model, ranges, { floatLayers: ['third'] })).toThrow(
      '--float-layers: third not a convolution of this model (its convolutions: first, second)',
    );
    expect(() => quantizedModelToOnnx(model, new Map())).toThrow(/no calibration range for value/);
    model.dispose();
  });

  it('ONNX Runtime runs every zoo conv as QLinearConv and the residual sums as QLinearAdd, close to float', async () => {
    // mobilenet_v1 also as the default recipe builds it: its first stride-2 conv anti-aliased by a frozen depthwise low-pass.
    const cases: [string, number, number][] = [
      ['grayscale_cnn', 32, 0],
      ['mobilenet_v1', 64, 0],
      ['mobilenet_v1', 64, 1],
      ['resnet18', 64, 0],
      ['vgg16', 128, 0],
    ];
    for (const [name, size, antiAlias] of cases) {
      const built = createModel(name, { numClasses: 3, inputSize: [size, size], seed: 5, antiAlias });
      const shape = built.model.inputs[0]!.shape.slice(1) as number[];
      const frames = uniformFrames(4, shape, 7, -1, 1);
      const floatBytes = modelToOnnx(built.model).bytes;
      const { result } = await quantizeModel(built.model, frames, { threads: 1 });
      const floatConvs = opCounts(decodeModel(floatBytes)).get('Conv')!;
      const counts = opCounts(await optimisedGraph(result.bytes, name));
      expect({ name, qlinear: counts.get('QLinearConv'), float: counts.get('Conv') ?? 0 }).toEqual({ name, qlinear: floatConvs, float: 0 });
      // One QuantizeLinear at the entry, and at most one more per explicit Pad (ResNet pads in
      // float before its 7×7 stem, its stem max pool and its strided convs).
      const pads = opCounts(decodeModel(floatBytes)).get('Pad') ?? 0;
      expect(counts.get('QuantizeLinear')! - 1).toBeLessThanOrEqual(pads);
      if (pads === 0) expect(counts.get('QuantizeLinear')).toBe(1);
      if (name === 'resnet18') expect(counts.get('QLinearAdd')).toBe(8);
      const a = await runOnnx(floatBytes, frames, shape);
      const b = await runOnnx(result.bytes, frames, shape);
      for (let i = 0; i < frames.length; i++) expect({ name, i, diff: maxAbsDiff(a[i]!, b[i]!) <= 0.1 }).toEqual({ name, i, diff: true });
      disposeBuiltModel(built);
    }
  }, 120_000);

  it('a layer kept in float stays a float Conv', async () => {
    const built = createModel('grayscale_cnn', { numClasses: 3, inputSize: [32, 32], seed: 5 });
    const convNames = decodeModel(modelToOnnx(built.model).bytes).graph.node.filter((n) => n.opType === 'Conv').map((n) => n.output[0]!);
    const { result } = await quantizeModel(built.model, uniformFrames(2, [32, 32, 1], 8), { floatLayers: [convNames[0]!], threads: 1 });
    const counts = opCounts(await optimisedGraph(result.bytes, 'float-first'));
    expect((counts.get('Conv') ?? 0) + (counts.get('FusedConv') ?? 0)).toBe(1);
    expect(counts.get('QLinearConv')).toBe(convNames.length - 1);
    disposeBuiltModel(built);
  });
});
