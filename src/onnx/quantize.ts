// Post-training int8 quantisation of an exported graph in ONNX's QDQ form, for ONNX Runtime's
// integer convolution kernels (the fp32 graphs already run at this CPU's fp32 peak; see README).
//
// The graph stays a float graph with QuantizeLinear → DequantizeLinear pairs around each
// convolution: uint8 activations (asymmetric, one scale per tensor, from calibration) and int8
// weights (symmetric, one scale per output channel), int32 biases. ONNX Runtime's QDQ fusion
// (graph level 'basic' and up) turns DQ → Conv → Q into QLinearConv, DQ DQ → Add → Q into
// QLinearAdd, and removes a Relu or Clip before a Q whose range it cannot leave. Everything else
// (pooling, the dense head, softmax) runs in float on dequantised values.
import type * as tfl from '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import { draftOnnxGraph, encodeDraft, type OnnxExportOptions, type OnnxExportResult } from './export.js';
import type { OnnxGraphBuilder } from './graph_builder.js';
import { DataType, type NodeMessage } from './onnx_proto.js';

/** The observed range of one tensor over the calibration inputs. */
export interface ValueRange {
  min: number;
  max: number;
}

/** uint8 affine parameters: real = scale · (q − zeroPoint). */
export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

/**
 * Values to quantise, in graph order: each convolution's input and its output (taken after a Relu
 * or Clip that is the conv's only reader, so that the activation is absorbed), and the output of
 * an Add whose inputs are both quantised (ResNet's residual sums).
 */
export function quantizationPoints(nodes: readonly NodeMessage[], floatLayers: ReadonlySet<string> = new Set()): string[] {
  const readers = readersOf(nodes);
  const afterActivation = (value: string): string => {
    const only = readers.get(value);
    if (only?.length === 1 && (only[0]!.opType === 'Relu' || only[0]!.opType === 'Clip')) return only[0]!.output[0]!;
    return value;
  };
  const points = new Set<string>();
  for (const node of nodes) {
    if (!isQuantisedConv(node, floatLayers)) continue;
    points.add(node.input[0]!);
    points.add(afterActivation(node.output[0]!));
  }
  // Adds are visited in graph order, so a sum of sums is found in one pass.
  for (const node of nodes) {
    if (node.opType === 'Add' && node.input.length === 2 && node.input.every((input) => points.has(input))) {
      points.add(afterActivation(node.output[0]!));
    }
  }
  const order = new Map<string, number>();
  nodes.forEach((node, i) => node.output.forEach((output) => order.set(output, i)));
  // A graph input has no producer and sorts first.
  return [...points].sort((a, b) => (order.get(a) ?? -1) - (order.get(b) ?? -1));
}

/** A conv node's output is named after its Keras layer (layers.ts), which is how users name it. */
const isQuantisedConv = (node: NodeMessage, floatLayers: ReadonlySet<string>): boolean => node.opType === 'Conv' && !floatLayers.has(node.output[0]!);

function readersOf(nodes: readonly NodeMessage[]): Map<string, NodeMessage[]> {
  const readers = new Map<string, NodeMessage[]>();
  for (const node of nodes) for (const input of node.input) readers.set(input, [...(readers.get(input) ?? []), node]);
  return readers;
}

/** uint8 parameters covering `range` and exactly representing 0 (zero padding, ReLU's floor). */
export function uint8Params(range: ValueRange): QuantParams {
  const min = Math.min(range.min, 0);
  const max = Math.max(range.max, 0);
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new PocovidError(`calibration range [${range.min}, ${range.max}] is not finite`);
  if (max === min) return { scale: 1, zeroPoint: 0 };
  const scale = (max - min) / 255;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-min / scale))) };
}

export interface QdqOptions {
  /**
   * int8 weights in [-63, 63] instead of [-127, 127]. On x86 CPUs without VNNI, ONNX Runtime's
   * u8×s8 kernels add pairs of products in int16 and can saturate with full-range weights.
   * Default true.
   */
  reduceRange?: boolean;
  /** Conv layers (Keras names) left in float, e.g. the first layer or one a sensitivity check blames. */
  floatLayers?: readonly string[];
}

/** Rewrites the draft's graph into QDQ form with the calibrated `ranges` (one per quantizationPoints value). */
export function applyQdq(builder: OnnxGraphBuilder, ranges: ReadonlyMap<string, ValueRange>, options: QdqOptions = {}): void {
  const weightLimit = (options.reduceRange ?? true) ? 63 : 127;
  const nodes = builder.allNodes().slice();
  const floatLayers = new Set(options.floatLayers ?? []);
  const convNames = new Set(nodes.filter((node) => node.opType === 'Conv').map((node) => node.output[0]!));
  const unknown = [...floatLayers].filter((name) => !convNames.has(name));
  if (unknown.length > 0) throw new PocovidError(`--float-layers: ${unknown.join(', ')} not a convolution of this model (its convolutions: ${[...convNames].join(', ')})`);
  const points = quantizationPoints(nodes, floatLayers);
  const params = new Map<string, QuantParams>();
  for (const point of points) {
    const range = ranges.get(point);
    if (!range) throw new PocovidError(`no calibration range for value "${point}"`);
    // A max pool of quantised values keeps their parameters: the max of uint8 codes is exact, and
    // ONNX Runtime only runs MaxPool on the codes (dropping its DQ and Q) when the two match.
    const producer = nodes.find((node) => node.output.includes(point));
    const pooled = producer?.opType === 'MaxPool' ? params.get(producer.input[0]!) : undefined;
    params.set(point, pooled ?? uint8Params(clampToClip(builder, nodes, point, range)));
  }

  // value → its dequantised twin, which every reader but the QuantizeLinear reads instead.
  const dequantised = new Map<string, string>();
  const rewritten: NodeMessage[] = [];
  const emitQdq = (value: string): void => {
    const { scale, zeroPoint } = params.get(value)!;
    const scaleName = builder.addFloatInitializer(`${value}_scale`, [], Float32Array.of(scale));
    const zeroName = builder.addRawInitializer(`${value}_zero_point`, DataType.UINT8, [], Uint8Array.of(zeroPoint));
    const quantised = builder.uniqueName(`${value}_quantized`);
    const restored = builder.uniqueName(`${value}_dequantized`);
    rewritten.push(builder.createNode('QuantizeLinear', [value, scaleName, zeroName], quantised));
    rewritten.push(builder.createNode('DequantizeLinear', [quantised, scaleName, zeroName], restored));
    dequantised.set(value, restored);
  };

  for (const point of points) if (!nodes.some((node) => node.output.includes(point))) emitQdq(point); // graph inputs
  for (const node of nodes) {
    const inputParams = params.get(node.input[0]!);
    node.input = node.input.map((input) => dequantised.get(input) ?? input);
    if (isQuantisedConv(node, floatLayers)) rewritten.push(...quantiseConvWeights(builder, node, inputParams, weightLimit));
    rewritten.push(node);
    for (const output of node.output) if (params.has(output)) emitQdq(output);
  }
  builder.replaceNodes(rewritten);
}

/**
 * A Clip's output range is cut to its bounds, so that the quantised range never exceeds them and
 * ONNX Runtime can drop the Clip (it only does when the Q range lies inside the Clip's).
 */
function clampToClip(builder: OnnxGraphBuilder, nodes: readonly NodeMessage[], value: string, range: ValueRange): ValueRange {
  const producer = nodes.find((node) => node.output.includes(value));
  if (producer?.opType !== 'Clip' || producer.input.length < 3) return range;
  const lo = builder.floatInitializer(producer.input[1]!).data[0]!;
  const hi = builder.floatInitializer(producer.input[2]!).data[0]!;
  return { min: Math.max(range.min, lo), max: Math.min(range.max, hi) };
}

/**
 * Replaces a Conv's float weight and bias initializers by int8 weights (per output channel) and
 * int32 biases (scale = input scale × weight scale, as QLinearConv requires), each behind a
 * DequantizeLinear; returns those DequantizeLinear nodes.
 */
function quantiseConvWeights(builder: OnnxGraphBuilder, conv: NodeMessage, inputParams: QuantParams | undefined, limit: number): NodeMessage[] {
  const weight = builder.floatInitializer(conv.input[1]!);
  const outChannels = weight.dims[0]!;
  const perChannel = weight.data.length / outChannels;
  const weightScales = new Float32Array(outChannels);
  const quantised = new Int8Array(weight.data.length);
  for (let o = 0; o < outChannels; o++) {
    let maxAbs = 0;
    for (let i = o * perChannel; i < (o + 1) * perChannel; i++) maxAbs = Math.max(maxAbs, Math.abs(weight.data[i]!));
    const scale = maxAbs > 0 ? maxAbs / limit : 1;
    weightScales[o] = scale;
    for (let i = o * perChannel; i < (o + 1) * perChannel; i++) quantised[i] = Math.round(weight.data[i]! / scale);
  }
  const created: NodeMessage[] = [];
  const weightBase = conv.input[1]!;
  builder.removeFloatInitializer(weightBase);
  const weightQ = builder.addRawInitializer(`${weightBase}_int8`, DataType.INT8, weight.dims, new Uint8Array(quantised.buffer));
  const weightScale = builder.addFloatInitializer(`${weightBase}_scale`, [outChannels], weightScales);
  const weightZero = builder.addRawInitializer(`${weightBase}_zero_point`, DataType.INT8, [outChannels], new Uint8Array(outChannels));
  const weightOut = builder.uniqueName(`${weightBase}_dequantized`);
  created.push(builder.createNode('DequantizeLinear', [weightQ, weightScale, weightZero], weightOut, { axis: 0 }));
  conv.input[1] = weightOut;

  if (conv.input.length > 2) {
    if (!inputParams) throw new PocovidError(`conv "${conv.name}": its input is not quantised, so its bias cannot be`);
    const biasBase = conv.input[2]!;
    const bias = builder.floatInitializer(biasBase);
    const biasScales = new Float32Array(outChannels);
    const biasQ = new Int32Array(outChannels);
    for (let o = 0; o < outChannels; o++) {
      biasScales[o] = inputParams.scale * weightScales[o]!;
      biasQ[o] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(bias.data[o]! / biasScales[o]!)));
    }
    builder.removeFloatInitializer(biasBase);
    const biasName = builder.addRawInitializer(`${biasBase}_int32`, DataType.INT32, [outChannels], new Uint8Array(biasQ.buffer));
    const biasScale = builder.addFloatInitializer(`${biasBase}_scale`, [outChannels], biasScales);
    const biasZero = builder.addRawInitializer(`${biasBase}_zero_point`, DataType.INT32, [outChannels], new Uint8Array(outChannels * 4));
    const biasOut = builder.uniqueName(`${biasBase}_dequantized`);
    created.push(builder.createNode('DequantizeLinear', [biasName, biasScale, biasZero], biasOut, { axis: 0 }));
    conv.input[2] = biasOut;
  }
  return created;
}

export interface QuantizeOptions extends OnnxExportOptions, QdqOptions {}

/** A draft whose quantisation points are also graph outputs, to observe their ranges. */
export function calibrationGraph(model: tfl.LayersModel, options: OnnxExportOptions = {}): { result: OnnxExportResult; points: string[] } {
  const draft = draftOnnxGraph(model, options);
  // Every conv's points, so that one calibration serves any choice of float layers.
  const points = quantizationPoints(draft.builder.allNodes());
  for (const point of points) draft.builder.addOutput(point, undefined);
  return { result: encodeDraft(draft), points };
}

/** `model` as a QDQ int8 ONNX graph, given the calibrated range of every quantisation point. */
export function quantizedModelToOnnx(model: tfl.LayersModel, ranges: ReadonlyMap<string, ValueRange>, options: QuantizeOptions = {}): OnnxExportResult {
  const opset = options.opset ?? 13;
  // Per-channel DequantizeLinear (its `axis`) arrived in opset 13.
  if (opset < 13) throw new PocovidError(`int8 quantisation needs ONNX opset 13 or newer, got ${opset}`);
  const draft = draftOnnxGraph(model, { ...options, opset });
  applyQdq(draft.builder, ranges, options);
  return encodeDraft(draft);
}
