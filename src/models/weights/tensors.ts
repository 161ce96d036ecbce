// The in-memory form every weight reader produces and the loader consumes: plain float32 arrays
// keyed by name, independent of TensorFlow.js so that readers stay testable and cheap.

export interface NamedTensor {
  shape: number[];
  /** Row-major (C order) values. */
  data: Float32Array;
}

/** name → tensor, in file order. */
export type TensorMap = Map<string, NamedTensor>;

/** True when `name` is one of `patterns`; a pattern ending in `*` matches every name starting with the rest. */
export function matchesAnyName(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Permutes the axes of a row-major tensor: out.shape[i] = shape[perm[i]].
 * Used for layout changes between frameworks (e.g. OIHW → HWIO is perm [2, 3, 1, 0]).
 */
export function transposeTensor(tensor: NamedTensor, perm: readonly number[]): NamedTensor {
  const { shape, data } = tensor;
  const rank = shape.length;
  if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new Error(`permutation [${perm.join(', ')}] does not fit a tensor of rank ${rank}`);
  }
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank);
  let stride = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = stride;
    stride *= shape[i]!;
  }
  // Stride in the input for each output axis, so that the inner loop is a single add.
  const stepFor = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  let source = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = data[source]!;
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis]!++;
      source += stepFor[axis]!;
      if (index[axis]! < outShape[axis]!) break;
      source -= stepFor[axis]! * outShape[axis]!;
      index[axis] = 0;
    }
  }
  return { shape: outShape, data: out };
}
