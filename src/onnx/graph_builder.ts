// Accumulates ONNX nodes and initializers with unique names. Float initializers stay mutable
// Float32Arrays until `build`, so that a BatchNorm met after a conv can still be folded into it.
import {
  AttributeType,
  DataType,
  type AttributeMessage,
  type GraphMessage,
  type NodeMessage,
  type TensorMessage,
  type ValueInfoMessage,
} from './onnx_proto.js';

/** A value flowing through the graph. Rank-4 values are NCHW inside the graph (ONNX Conv's layout). */
export interface OnnxValue {
  name: string;
  rank: number;
}

interface FloatInitializer {
  dims: number[];
  data: Float32Array;
}

export type AttributeValue = number | number[] | string | { floats: number[] } | { float: number };

export class OnnxGraphBuilder {
  private readonly usedNames = new Set<string>();
  private readonly nodes: NodeMessage[] = [];
  private readonly floats = new Map<string, FloatInitializer>();
  private readonly int64s = new Map<string, { dims: number[]; data: number[] }>();
  private readonly raws = new Map<string, { dims: number[]; dataType: number; bytes: Uint8Array }>();
  private readonly inputs: ValueInfoMessage[] = [];
  private readonly outputs: ValueInfoMessage[] = [];

  /** `base`, or `base_1`, `base_2`… if taken; characters outside [A-Za-z0-9_.:/-] become '_'. */
  uniqueName(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_.:/-]/g, '_') || 'value';
    let name = clean;
    for (let i = 1; this.usedNames.has(name); i++) name = `${clean}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  /** Reserves an exact name (graph inputs/outputs); throws if it is already used. */
  reserveName(name: string): string {
    if (this.usedNames.has(name)) throw new Error(`ONNX value name "${name}" is used twice`);
    this.usedNames.add(name);
    return name;
  }

  addFloatInitializer(base: string, dims: number[], data: Float32Array): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new Error(`initializer ${base}: ${data.length} values for dims [${dims}]`);
    const name = this.uniqueName(base);
    this.floats.set(name, { dims, data });
    return name;
  }

  /** An initializer of any data type from its little-endian bytes (quantised weights, scales, zero points). */
  addRawInitializer(base: string, dataType: number, dims: number[], bytes: Uint8Array): string {
    const name = this.uniqueName(base);
    this.raws.set(name, { dims, dataType, bytes });
    return name;
  }

  /** Drops a float initializer that a rewrite no longer reads (e.g. weights replaced by int8 ones). */
  removeFloatInitializer(name: string): void {
    if (!this.floats.delete(name)) throw new Error(`no float initializer "${name}"`);
  }

  /** Whether `name` is a float initializer (a constant rather than a computed value). */
  isFloatInitializer(name: string): boolean {
    return this.floats.has(name);
  }

  addInt64Initializer(base: string, values: number[]): string {
    const name = this.uniqueName(base);
    this.int64s.set(name, { dims: [values.length], data: values });
    return name;
  }

  /** The live data of a float initializer (mutated in place when folding). */
  floatInitializer(name: string): FloatInitializer {
    const found = this.floats.get(name);
    if (!found) throw new Error(`no float initializer "${name}"`);
    return found;
  }

  /** Adds a node; returns it so that a later fold can add an input (e.g. a bias) to it. */
  addNode(opType: string, inputs: string[], output: string, attributes: Record<string, AttributeValue> = {}): NodeMessage {
    const node = this.createNode(opType, inputs, output, attributes);
    this.nodes.push(node);
    return node;
  }

  /** A node with a unique name that is not yet in the graph (for replaceNodes). */
  createNode(opType: string, inputs: string[], output: string, attributes: Record<string, AttributeValue> = {}): NodeMessage {
    return {
      name: this.uniqueName(`${output}/${opType}`),
      opType,
      input: inputs,
      output: [output],
      attribute: Object.entries(attributes).map(([name, value]) => toAttribute(name, value)),
    };
  }

  /** Replaces the node list (a whole-graph rewrite); the new list must still be in dependency order. */
  replaceNodes(nodes: NodeMessage[]): void {
    this.nodes.splice(0, this.nodes.length, ...nodes);
  }

  /** The nodes added so far, in order (for whole-graph passes before build). */
  allNodes(): readonly NodeMessage[] {
    return this.nodes;
  }

  addInput(name: string, shape: (number | string)[]): void {
    this.inputs.push(valueInfo(name, shape));
  }

  /** A float graph output; `shape` undefined leaves it to the runtime (calibration taps on inner values). */
  addOutput(name: string, shape: (number | string)[] | undefined): void {
    this.outputs.push(valueInfo(name, shape));
  }

  build(name: string, docString?: string): GraphMessage {
    const initializer: TensorMessage[] = [];
    for (const [tensorName, { dims, data }] of this.floats) {
      initializer.push({
        name: tensorName,
        dims,
        dataType: DataType.FLOAT,
        // raw_data is little-endian by the ONNX spec, as are the machines we run on.
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      });
    }
    for (const [tensorName, { dims, data }] of this.int64s) {
      initializer.push({ name: tensorName, dims, dataType: DataType.INT64, int64Data: data });
    }
    for (const [tensorName, { dims, dataType, bytes }] of this.raws) {
      initializer.push({ name: tensorName, dims, dataType, rawData: bytes });
    }
    return { name, node: this.nodes, initializer, input: this.inputs, output: this.outputs, docString };
  }
}

function valueInfo(name: string, shape: (number | string)[] | undefined): ValueInfoMessage {
  if (shape === undefined) return { name, type: { tensorType: { elemType: DataType.FLOAT } } };
  return {
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function toAttribute(name: string, value: AttributeValue): AttributeMessage {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer; pass { float }`);
    return { name, type: AttributeType.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: value.floats };
  return { name, type: AttributeType.FLOAT, f: value.float };
}
