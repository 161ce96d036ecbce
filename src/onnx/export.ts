// TF.js Layers model → ONNX bytes / file. Walks the model's own graph (so a layer shared with a
// cut head is converted once, through this model's node), converting each layer with layers.ts.
//
// Graph contract: inputs and outputs keep TF.js's layout and names (NHWC images, batch dimension
// "batch"), so an ONNX session is fed exactly what model.predict is fed and returns the same arrays.
import type * as tfl from '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { VERSION } from '../version.js';
import { OnnxGraphBuilder, type OnnxValue } from './graph_builder.js';
import { convertLayer, type FoldableConv } from './layers.js';
import { encodeModel, type NodeMessage } from './onnx_proto.js';

type Layer = tfl.LayersModel['layers'][number];
type LayerNode = Layer['inboundNodes'][number];
type SymbolicTensor = tfl.SymbolicTensor;

export const DEFAULT_OPSET = 13;
/** Opset 11 is the first with Clip/Pad bounds as inputs; 21 is the newest the IR table below knows. */
export const MIN_OPSET = 11;
export const MAX_OPSET = 21;

export interface OnnxExportOptions {
  /** ONNX default-domain opset version, MIN_OPSET..MAX_OPSET; default DEFAULT_OPSET. */
  opset?: number;
}

export interface OnnxTensorInfo {
  name: string;
  /** TF.js layout, batch dimension first as null. */
  shape: (number | null)[];
}

export interface OnnxExportResult {
  bytes: Uint8Array;
  opset: number;
  inputs: OnnxTensorInfo[];
  outputs: OnnxTensorInfo[];
}

/** The IR version that goes with an opset (onnx/helper.py VERSION_TABLE). */
function irVersionFor(opset: number): number {
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

/** The model's nodes in an order where every node comes after the nodes it reads. */
function nodesInOrder(model: tfl.LayersModel): LayerNode[] {
  const depths = Object.keys(model.nodesByDepth)
    .map(Number)
    .sort((a, b) => b - a);
  return depths.flatMap((depth) => model.nodesByDepth[String(depth)] ?? []);
}

function tensorInfo(name: string, shape: (number | null)[]): OnnxTensorInfo {
  return { name, shape: shape.slice() };
}

/** Checks an opset value; returns it. */
export function checkOpset(opset: number): number {
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new PocovidError(`ONNX opset must be an integer from ${MIN_OPSET} to ${MAX_OPSET}, got ${opset}`);
  }
  return opset;
}

/** The converted graph before it is encoded, so that a whole-graph pass (quantize.ts) can rewrite it. */
export interface OnnxGraphDraft {
  builder: OnnxGraphBuilder;
  opset: number;
  name: string;
  inputs: OnnxTensorInfo[];
  outputs: OnnxTensorInfo[];
}

/** Converts `model` to ONNX protobuf bytes (inference graph: Dropout is identity, BatchNorm uses moving statistics). */
export function modelToOnnx(model: tfl.LayersModel, options: OnnxExportOptions = {}): OnnxExportResult {
  return encodeDraft(draftOnnxGraph(model, options));
}

/** Encodes a draft as an ONNX model. */
export function encodeDraft(draft: OnnxGraphDraft): OnnxExportResult {
  const { builder, opset, name, inputs, outputs } = draft;
  const bytes = encodeModel({
    irVersion: irVersionFor(opset),
    producerName: 'pocovid',
    producerVersion: VERSION,
    opsetImport: [{ domain: '', version: opset }],
    graph: builder.build(name, `exported from TF.js Layers model "${name}"`),
  });
  return { bytes, opset, inputs, outputs };
}

/**
 * Converts `model`'s layers into ONNX nodes (not yet encoded). The same model always gives the same
 * node and value names, which quantize.ts relies on to calibrate one draft and rewrite another.
 */
export function draftOnnxGraph(model: tfl.LayersModel, options: OnnxExportOptions = {}): OnnxGraphDraft {
  const opset = checkOpset(options.opset ?? DEFAULT_OPSET);
  const builder = new OnnxGraphBuilder();
  const values = new Map<number, OnnxValue>();
  const foldable = new Map<number, FoldableConv>();

  // How many times each tensor is read (model outputs count): a conv feeding anything besides one
  // BatchNorm must keep its own output, so it cannot absorb that BatchNorm.
  const nodes = nodesInOrder(model);
  const readers = new Map<number, number>();
  const countRead = (tensor: SymbolicTensor): void => {
    readers.set(tensor.id, (readers.get(tensor.id) ?? 0) + 1);
  };
  for (const node of nodes) if (node.outboundLayer.getClassName() !== 'InputLayer') node.inputTensors.forEach(countRead);
  model.outputs.forEach(countRead);

  const inputs = model.inputs.map((tensor, i) => {
    const name = builder.reserveName(model.inputNames[i] ?? `input_${i}`);
    const shape = tensor.shape;
    builder.addInput(name, shape.map((d, axis) => (d === null ? (axis === 0 ? 'batch' : `dim_${axis}`) : d)));
    let value: OnnxValue = { name, rank: shape.length };
    if (shape.length === 4) {
      const nchw = builder.uniqueName(`${name}_nchw`);
      builder.addNode('Transpose', [name], nchw, { perm: [0, 3, 1, 2] });
      value = { name: nchw, rank: 4 };
    }
    values.set(tensor.id, value);
    return tensorInfo(name, shape);
  });

  // Output names are reserved before any layer is converted, so no internal value can take them.
  const outputNames = model.outputs.map((_, i) =>
    builder.reserveName(uniqueOutputName(model.outputNames[i] ?? `output_${i}`, model.inputNames, model.outputNames, i)),
  );

  for (const node of nodes) {
    const layer = node.outboundLayer;
    if (layer.getClassName() === 'InputLayer') continue;
    const inputValues = node.inputTensors.map((tensor) => {
      const value = values.get(tensor.id);
      if (!value) throw new Error(`layer "${layer.name}" reads tensor "${tensor.name}" before it is produced`);
      return value;
    });
    const first = node.inputTensors[0];
    const result = convertLayer({
      layer,
      config: layer.getConfig() as Record<string, unknown>,
      inputs: inputValues,
      inputShapes: node.inputTensors.map((tensor) => tensor.shape),
      outputShapes: node.outputTensors.map((tensor) => tensor.shape),
      builder,
      opset,
      foldableInput: first && readers.get(first.id) === 1 ? foldable.get(first.id) : undefined,
    });
    if (result.outputs.length !== node.outputTensors.length) {
      throw new Error(`layer "${layer.name}": ${result.outputs.length} ONNX outputs for ${node.outputTensors.length} tensors`);
    }
    node.outputTensors.forEach((tensor, i) => values.set(tensor.id, result.outputs[i]!));
    if (result.foldable) foldable.set(node.outputTensors[0]!.id, result.foldable);
  }

  const outputs = model.outputs.map((tensor, i) => {
    const name = outputNames[i]!;
    const value = values.get(tensor.id)!;
    // Rank-4 outputs (backbone feature maps) go back to TF.js's NHWC layout.
    if (value.rank === 4) builder.addNode('Transpose', [value.name], name, { perm: [0, 2, 3, 1] });
    else builder.addNode('Identity', [value.name], name);
    builder.addOutput(name, tensor.shape.map((d, axis) => (d === null ? (axis === 0 ? 'batch' : `dim_${axis}`) : d)));
    return tensorInfo(name, tensor.shape);
  });

  keepPadsBeforePools(builder);
  return { builder, opset, name: model.name, inputs, outputs };
}

/**
 * ONNX Runtime's PadFusion (graph level 'basic' and up) folds a zero Pad into a following MaxPool
 * or AveragePool's `pads`, but those pads are not zeros: MaxPool ignores them (-inf) and
 * AveragePool leaves them out of the count, so the fused graph computes something else wherever
 * the padded border matters. The pass only fuses a Pad whose constant is all zero BYTES, so giving
 * such a Pad the constant -0.0 (numerically 0) keeps it. Pads before Conv are left to be fused.
 */
function keepPadsBeforePools(builder: OnnxGraphBuilder): void {
  const nodes = builder.allNodes();
  const readers = new Map<string, NodeMessage[]>();
  for (const node of nodes) for (const input of node.input) readers.set(input, [...(readers.get(input) ?? []), node]);
  let negativeZero: string | undefined;
  for (const node of nodes) {
    if (node.opType !== 'Pad' || node.input.length !== 2) continue;
    const consumers = readers.get(node.output[0]!) ?? [];
    if (!consumers.some((consumer) => consumer.opType === 'MaxPool' || consumer.opType === 'AveragePool')) continue;
    negativeZero ??= builder.addFloatInitializer('pad_value_negative_zero', [], Float32Array.of(-0));
    node.input.push(negativeZero);
  }
}

/** An output name that collides with an input or an earlier output gets a suffix. */
function uniqueOutputName(name: string, inputNames: string[], outputNames: string[], index: number): string {
  const taken = new Set([...inputNames, ...outputNames.slice(0, index)]);
  if (!taken.has(name)) return name;
  for (let i = 1; ; i++) if (!taken.has(`${name}_${i}`)) return `${name}_${i}`;
}

/** Exports `model` to an ONNX file (written atomically). Export the backbone/head of a BuiltModel the same way. */
export async function exportOnnx(model: tfl.LayersModel, file: string, options: OnnxExportOptions = {}): Promise<OnnxExportResult> {
  const result = modelToOnnx(model, options);
  await writeFileAtomic(file, result.bytes);
  return result;
}
