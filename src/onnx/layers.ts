// One converter per Keras layer class: each turns a layer applied to ONNX values into ONNX nodes.
// TF.js is NHWC; inside the ONNX graph every rank-4 value is NCHW (what ONNX Conv/Pool take), so
// only the graph's entry and exit and the Flatten before a Dense need transposes.
import type * as tfl from '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import type { OnnxGraphBuilder, OnnxValue } from './graph_builder.js';
import type { NodeMessage } from './onnx_proto.js';

type Layer = tfl.LayersModel['layers'][number];
type Shape = (number | null)[];
type Config = Record<string, unknown>;

/** A Conv node whose weight/bias initializers a directly following BatchNorm may still rescale. */
export interface FoldableConv {
  node: NodeMessage;
  weight: string;
  bias: string | undefined;
  outChannels: number;
}

export interface ConvertContext {
  layer: Layer;
  config: Config;
  inputs: OnnxValue[];
  /** NHWC shapes as TF.js sees them (batch first, null). */
  inputShapes: Shape[];
  outputShapes: Shape[];
  builder: OnnxGraphBuilder;
  opset: number;
  /**
   * The conv that produced inputs[0] if it can absorb a BatchNorm (linear activation and this layer
   * is its only consumer); undefined otherwise.
   */
  foldableInput: FoldableConv | undefined;
}

export interface ConvertResult {
  outputs: OnnxValue[];
  /** Set when outputs[0] comes straight from a Conv that may be folded into later. */
  foldable?: FoldableConv;
}

type Converter = (ctx: ConvertContext) => ConvertResult;

const IDENTITY_AT_INFERENCE = ['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout'];

const converters: Record<string, Converter> = {
  Conv2D: convertConv2D,
  DepthwiseConv2D: convertDepthwiseConv2D,
  BatchNormalization: convertBatchNormalization,
  ReLU: convertReLU,
  Activation: (ctx) => ({ outputs: [activation(ctx, ctx.inputs[0]!, String(ctx.config.activation))] }),
  Softmax: convertSoftmax,
  MaxPooling2D: (ctx) => convertPool(ctx, 'MaxPool'),
  AveragePooling2D: (ctx) => convertPool(ctx, 'AveragePool'),
  GlobalAveragePooling2D: convertGlobalAveragePooling2D,
  ZeroPadding2D: convertZeroPadding2D,
  Add: convertAdd,
  Flatten: convertFlatten,
  Dense: convertDense,
  ...Object.fromEntries(IDENTITY_AT_INFERENCE.map((name) => [name, (ctx: ConvertContext) => ({ outputs: [ctx.inputs[0]!] })])),
};

export const SUPPORTED_LAYERS: readonly string[] = Object.keys(converters).sort();

export function convertLayer(ctx: ConvertContext): ConvertResult {
  const className = ctx.layer.getClassName();
  const converter = converters[className];
  if (!converter) {
    throw new PocovidError(
      `cannot export layer "${ctx.layer.name}" (${className}) to ONNX; supported layers: ${SUPPORTED_LAYERS.join(', ')}`,
    );
  }
  return converter(ctx);
}

function unsupported(ctx: ConvertContext, problem: string): PocovidError {
  return new PocovidError(`cannot export layer "${ctx.layer.name}" (${ctx.layer.getClassName()}) to ONNX: ${problem}`);
}

// ---------------------------------------------------------------------------------------------
// Weights and geometry

/** A weight of the layer by its Keras short name (kernel, bias, gamma, moving_mean…), copied out. */
function weight(layer: Layer, shortName: string): { shape: number[]; data: Float32Array } | undefined {
  const variable = layer.weights.find((w) => w.originalName === shortName || w.originalName.endsWith(`/${shortName}`));
  if (!variable) return undefined;
  const tensor = variable.read();
  return { shape: tensor.shape.slice(), data: Float32Array.from(tensor.dataSync() as Float32Array) };
}

function requireWeight(ctx: ConvertContext, shortName: string): { shape: number[]; data: Float32Array } {
  const found = weight(ctx.layer, shortName);
  if (!found) throw unsupported(ctx, `it has no "${shortName}" weight`);
  return found;
}

function pair(value: unknown): [number, number] {
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2) return [Number(value[0]), Number(value[1])];
  throw new Error(`expected a number or a pair, got ${JSON.stringify(value)}`);
}

function requireChannelsLast(ctx: ConvertContext): void {
  const format = ctx.config.dataFormat;
  if (format !== undefined && format !== 'channelsLast') throw unsupported(ctx, `dataFormat ${String(format)} (only channelsLast)`);
}

/** The input's spatial size [H, W], which must be static for explicit padding. */
function spatialSize(ctx: ConvertContext): [number, number] {
  const shape = ctx.inputShapes[0]!;
  const [h, w] = [shape[1], shape[2]];
  if (shape.length !== 4 || typeof h !== 'number' || typeof w !== 'number') {
    throw unsupported(ctx, `needs a static NHWC input shape, got ${JSON.stringify(shape)}`);
  }
  return [h, w];
}

/**
 * ONNX pads [top, left, bottom, right] reproducing TF's 'same'/'valid'. TF 'same' puts the odd
 * pixel at the bottom/right (e.g. stride 2 on an even map pads 0 before, 1 after), which ONNX's
 * symmetric `pads` cannot express implicitly; explicit pads are exact.
 */
function tfPads(ctx: ConvertContext, kernel: [number, number], strides: [number, number], dilation: [number, number]): number[] {
  const padding = ctx.config.padding;
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding !== 'same') throw unsupported(ctx, `padding "${String(padding)}"`);
  const size = spatialSize(ctx);
  const begin: number[] = [];
  const end: number[] = [];
  for (let axis = 0; axis < 2; axis++) {
    const effectiveKernel = (kernel[axis]! - 1) * dilation[axis]! + 1;
    const out = Math.ceil(size[axis]! / strides[axis]!);
    const total = Math.max((out - 1) * strides[axis]! + effectiveKernel - size[axis]!, 0);
    begin.push(Math.floor(total / 2));
    end.push(total - Math.floor(total / 2));
  }
  return [...begin, ...end];
}

/** Maps a TF.js (NHWC) axis of a rank-`rank` value to the axis of the same data in the ONNX graph. */
function onnxAxis(axis: number, rank: number): number {
  const positive = axis < 0 ? axis + rank : axis;
  if (rank !== 4) return positive;
  return [0, 2, 3, 1][positive]!;
}

// ---------------------------------------------------------------------------------------------
// Activations

/** Applies a Keras activation by name. */
function activation(ctx: ConvertContext, x: OnnxValue, name: string): OnnxValue {
  const { builder, layer } = ctx;
  const out = (op: string): OnnxValue => {
    const output = builder.uniqueName(`${layer.name}_${name}`);
    builder.addNode(op, [x.name], output);
    return { name: output, rank: x.rank };
  };
  switch (name) {
    case 'linear':
      return x;
    case 'relu':
      return out('Relu');
    case 'relu6':
      return clip(ctx, x, 0, 6);
    case 'sigmoid':
      return out('Sigmoid');
    case 'tanh':
      return out('Tanh');
    case 'softmax':
      return softmax(ctx, x, -1);
    default:
      throw unsupported(ctx, `activation "${name}" (supported: linear, relu, relu6, sigmoid, tanh, softmax)`);
  }
}

function clip(ctx: ConvertContext, x: OnnxValue, min: number, max: number): OnnxValue {
  const { builder, layer } = ctx;
  // Since opset 11 Clip takes its bounds as (scalar) inputs rather than attributes.
  const lo = builder.addFloatInitializer(`${layer.name}_clip_min`, [], Float32Array.of(min));
  const hi = builder.addFloatInitializer(`${layer.name}_clip_max`, [], Float32Array.of(max));
  const output = builder.uniqueName(`${layer.name}_clip`);
  builder.addNode('Clip', [x.name, lo, hi], output);
  return { name: output, rank: x.rank };
}

/** Softmax over TF.js axis `axis`. */
function softmax(ctx: ConvertContext, x: OnnxValue, axis: number): OnnxValue {
  const target = onnxAxis(axis, x.rank);
  // Before opset 13 Softmax flattened everything from `axis` on, which is a per-row softmax only
  // when `axis` is the last one.
  if (ctx.opset < 13 && target !== x.rank - 1) throw unsupported(ctx, `softmax over axis ${axis} needs opset >= 13`);
  const output = ctx.builder.uniqueName(`${ctx.layer.name}_softmax`);
  ctx.builder.addNode('Softmax', [x.name], output, { axis: target });
  return { name: output, rank: x.rank };
}

function convertReLU(ctx: ConvertContext): ConvertResult {
  const { config } = ctx;
  const x = ctx.inputs[0]!;
  const maxValue = config.maxValue;
  if (maxValue === null || maxValue === undefined) {
    const output = ctx.builder.uniqueName(ctx.layer.name);
    ctx.builder.addNode('Relu', [x.name], output);
    return { outputs: [{ name: output, rank: x.rank }] };
  }
  return { outputs: [clip(ctx, x, 0, Number(maxValue))] };
}

function convertSoftmax(ctx: ConvertContext): ConvertResult {
  const axis = ctx.config.axis;
  const single = Array.isArray(axis) ? (axis.length === 1 ? Number(axis[0]) : NaN) : Number(axis ?? -1);
  if (Number.isNaN(single)) throw unsupported(ctx, `softmax over several axes ${JSON.stringify(axis)}`);
  return { outputs: [softmax(ctx, ctx.inputs[0]!, single)] };
}

// ---------------------------------------------------------------------------------------------
// Convolutions and BatchNorm folding

function convertConv2D(ctx: ConvertContext): ConvertResult {
  requireChannelsLast(ctx);
  const { config } = ctx;
  const kernel = requireWeight(ctx, 'kernel');
  const [kh, kw, cin, cout] = kernel.shape as [number, number, number, number];
  if (config.groups !== undefined && config.groups !== 1) throw unsupported(ctx, `groups ${String(config.groups)}`);
  // HWIO → OIHW.
  const oihw = new Float32Array(kernel.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) oihw[((o * cin + i) * kh + y) * kw + x] = kernel.data[((y * kw + x) * cin + i) * cout + o]!;
  return emitConv(ctx, oihw, [cout, cin, kh, kw], 1, config.useBias ? requireWeight(ctx, 'bias').data : undefined);
}

function convertDepthwiseConv2D(ctx: ConvertContext): ConvertResult {
  requireChannelsLast(ctx);
  const { config } = ctx;
  const kernel = requireWeight(ctx, 'depthwise_kernel');
  const [kh, kw, cin, multiplier] = kernel.shape as [number, number, number, number];
  // A grouped conv with one group per input channel; output channel c·multiplier + m (TF's order).
  const weights = new Float32Array(kernel.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let c = 0; c < cin; c++)
        for (let m = 0; m < multiplier; m++) {
          weights[((c * multiplier + m) * kh + y) * kw + x] = kernel.data[((y * kw + x) * cin + c) * multiplier + m]!;
        }
  const bias = config.useBias ? requireWeight(ctx, 'bias').data : undefined;
  return emitConv(ctx, weights, [cin * multiplier, 1, kh, kw], cin, bias);
}

function emitConv(ctx: ConvertContext, weights: Float32Array, dims: number[], group: number, bias: Float32Array | undefined): ConvertResult {
  const { config, builder, layer } = ctx;
  const x = ctx.inputs[0]!;
  const kernelSize = pair(config.kernelSize);
  const strides = pair(config.strides ?? 1);
  const dilation = pair(config.dilationRate ?? 1);
  const weightName = builder.addFloatInitializer(`${layer.name}_weight`, dims, weights);
  const biasName = bias ? builder.addFloatInitializer(`${layer.name}_bias`, [dims[0]!], bias) : undefined;
  let pads = tfPads(ctx, kernelSize, strides, dilation);
  let input = x.name;
  if (pads.some((pad, i) => pad >= kernelSize[i % 2]!)) {
    // ONNX Runtime refuses a pad as large as the kernel, which TF 'same' produces with dilation:
    // pad with an explicit (zero) Pad node instead.
    input = pad(ctx, x, pads);
    pads = [0, 0, 0, 0];
  }
  const output = builder.uniqueName(layer.name);
  const node = builder.addNode('Conv', biasName ? [input, weightName, biasName] : [input, weightName], output, {
    kernel_shape: kernelSize,
    strides,
    dilations: dilation,
    pads,
    group,
  });
  const convOut: OnnxValue = { name: output, rank: 4 };
  const act = String(config.activation ?? 'linear');
  if (act === 'linear') {
    return { outputs: [convOut], foldable: { node, weight: weightName, bias: biasName, outChannels: dims[0]! } };
  }
  return { outputs: [activation(ctx, convOut, act)] };
}

/** BatchNorm's inference transform as per-channel y = x·scale + shift. */
function batchNormAffine(ctx: ConvertContext): { scale: Float64Array; shift: Float64Array } {
  const epsilon = Number(ctx.config.epsilon ?? 1e-3);
  const mean = requireWeight(ctx, 'moving_mean').data;
  const variance = requireWeight(ctx, 'moving_variance').data;
  const gamma = ctx.config.scale === false ? undefined : requireWeight(ctx, 'gamma').data;
  const beta = ctx.config.center === false ? undefined : requireWeight(ctx, 'beta').data;
  const scale = new Float64Array(mean.length);
  const shift = new Float64Array(mean.length);
  for (let c = 0; c < mean.length; c++) {
    scale[c] = (gamma ? gamma[c]! : 1) / Math.sqrt(variance[c]! + epsilon);
    shift[c] = (beta ? beta[c]! : 0) - mean[c]! * scale[c]!;
  }
  return { scale, shift };
}

function convertBatchNormalization(ctx: ConvertContext): ConvertResult {
  const x = ctx.inputs[0]!;
  const axis = Number(Array.isArray(ctx.config.axis) ? ctx.config.axis[0] : (ctx.config.axis ?? -1));
  if (axis !== -1 && axis !== x.rank - 1) throw unsupported(ctx, `BatchNorm over axis ${axis} (only the channel axis)`);
  const { scale, shift } = batchNormAffine(ctx);
  if (ctx.foldableInput) return { outputs: [foldIntoConv(ctx, ctx.foldableInput, scale, shift)] };

  // Not after a conv (e.g. after a Dense or an Add): Mul + Add with constants broadcast over the
  // channel axis (axis 1 of NCHW, the last of [N, C]).
  const { builder, layer } = ctx;
  const dims = x.rank === 4 ? [scale.length, 1, 1] : [scale.length];
  const scaleName = builder.addFloatInitializer(`${layer.name}_scale`, dims, Float32Array.from(scale));
  const shiftName = builder.addFloatInitializer(`${layer.name}_shift`, dims, Float32Array.from(shift));
  const scaled = builder.uniqueName(`${layer.name}_scaled`);
  builder.addNode('Mul', [x.name, scaleName], scaled);
  const output = builder.uniqueName(layer.name);
  builder.addNode('Add', [scaled, shiftName], output);
  return { outputs: [{ name: output, rank: x.rank }] };
}

/** Rescales the conv's weights and bias so that the conv computes BatchNorm(conv(x)). */
function foldIntoConv(ctx: ConvertContext, conv: FoldableConv, scale: Float64Array, shift: Float64Array): OnnxValue {
  const { builder, layer } = ctx;
  if (scale.length !== conv.outChannels) throw unsupported(ctx, `${scale.length} channels after a conv with ${conv.outChannels}`);
  const weights = builder.floatInitializer(conv.weight).data;
  const perChannel = weights.length / conv.outChannels;
  for (let o = 0; o < conv.outChannels; o++) {
    for (let j = o * perChannel; j < (o + 1) * perChannel; j++) weights[j] = weights[j]! * scale[o]!;
  }
  if (conv.bias) {
    const bias = builder.floatInitializer(conv.bias).data;
    for (let o = 0; o < bias.length; o++) bias[o] = bias[o]! * scale[o]! + shift[o]!;
  } else {
    conv.bias = builder.addFloatInitializer(`${layer.name}_folded_bias`, [conv.outChannels], Float32Array.from(shift));
    conv.node.input.push(conv.bias);
  }
  return { name: conv.node.output[0]!, rank: 4 };
}

// ---------------------------------------------------------------------------------------------
// Pooling, padding, shape

function convertPool(ctx: ConvertContext, op: 'MaxPool' | 'AveragePool'): ConvertResult {
  requireChannelsLast(ctx);
  const { config, builder, layer } = ctx;
  const poolSize = pair(config.poolSize);
  const strides = pair(config.strides ?? config.poolSize);
  const output = builder.uniqueName(layer.name);
  // AveragePool's count_include_pad defaults to 0: like TF, padded cells are not averaged in.
  builder.addNode(op, [ctx.inputs[0]!.name], output, {
    kernel_shape: poolSize,
    strides,
    pads: tfPads(ctx, poolSize, strides, [1, 1]),
  });
  return { outputs: [{ name: output, rank: 4 }] };
}

function convertGlobalAveragePooling2D(ctx: ConvertContext): ConvertResult {
  requireChannelsLast(ctx);
  const { builder, layer } = ctx;
  const pooled = builder.uniqueName(`${layer.name}_nc11`);
  builder.addNode('GlobalAveragePool', [ctx.inputs[0]!.name], pooled);
  // N×C×1×1 is already TF's keepDims layout (NHWC N×1×1×C) in our NCHW convention.
  if (ctx.config.keepDims === true) return { outputs: [{ name: pooled, rank: 4 }] };
  const output = builder.uniqueName(layer.name);
  builder.addNode('Flatten', [pooled], output, { axis: 1 });
  return { outputs: [{ name: output, rank: 2 }] };
}

function convertZeroPadding2D(ctx: ConvertContext): ConvertResult {
  requireChannelsLast(ctx);
  const padding = ctx.config.padding;
  const [[top, bottom], [left, right]] = (
    Array.isArray(padding) && Array.isArray(padding[0]) ? padding : [pair(padding), pair(padding)]
  ) as [[number, number], [number, number]];
  return { outputs: [{ name: pad(ctx, ctx.inputs[0]!, [top, left, bottom, right]), rank: 4 }] };
}

/** Zero-pads an NCHW value by [top, left, bottom, right]; returns the padded value's name. */
function pad(ctx: ConvertContext, x: OnnxValue, [top, left, bottom, right]: number[]): string {
  const { builder, layer } = ctx;
  // Since opset 11 Pad takes the pads as an int64 input: [begin per axis…, end per axis…].
  const pads = builder.addInt64Initializer(`${layer.name}_pads`, [0, 0, top!, left!, 0, 0, bottom!, right!]);
  const output = builder.uniqueName(layer.name);
  builder.addNode('Pad', [x.name, pads], output, { mode: 'constant' });
  return output;
}

function convertAdd(ctx: ConvertContext): ConvertResult {
  const { builder, layer, inputs } = ctx;
  if (inputs.length < 2 || inputs.some((x) => x.rank !== inputs[0]!.rank)) throw unsupported(ctx, 'inputs of different ranks');
  let sum = inputs[0]!;
  for (let i = 1; i < inputs.length; i++) {
    const output = builder.uniqueName(layer.name);
    builder.addNode('Add', [sum.name, inputs[i]!.name], output);
    sum = { name: output, rank: sum.rank };
  }
  return { outputs: [sum] };
}

function convertFlatten(ctx: ConvertContext): ConvertResult {
  const { builder, layer } = ctx;
  let x = ctx.inputs[0]!;
  if (x.rank <= 2) return { outputs: [x] };
  if (x.rank === 4) {
    // Keras flattens in NHWC order (channel fastest); go back to NHWC first so that the following
    // Dense reads its inputs in the order its kernel was trained on.
    const nhwc = builder.uniqueName(`${layer.name}_nhwc`);
    builder.addNode('Transpose', [x.name], nhwc, { perm: [0, 2, 3, 1] });
    x = { name: nhwc, rank: 4 };
  }
  const output = builder.uniqueName(layer.name);
  builder.addNode('Flatten', [x.name], output, { axis: 1 });
  return { outputs: [{ name: output, rank: 2 }] };
}

function convertDense(ctx: ConvertContext): ConvertResult {
  const { config, builder, layer } = ctx;
  const x = ctx.inputs[0]!;
  if (x.rank !== 2) throw unsupported(ctx, `a Dense on a rank-${x.rank} input (flatten it first)`);
  const kernel = requireWeight(ctx, 'kernel');
  const kernelName = builder.addFloatInitializer(`${layer.name}_kernel`, kernel.shape, kernel.data);
  const inputs = [x.name, kernelName];
  if (config.useBias !== false) {
    const bias = requireWeight(ctx, 'bias');
    inputs.push(builder.addFloatInitializer(`${layer.name}_bias`, bias.shape, bias.data));
  }
  const output = builder.uniqueName(`${layer.name}_linear`);
  builder.addNode('Gemm', inputs, output);
  return { outputs: [activation(ctx, { name: output, rank: 2 }, String(config.activation ?? 'linear'))] };
}
