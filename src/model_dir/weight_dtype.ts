// How a model folder stores its float32 weights: as float32 (the default), or smaller for the page
// to download: float16 (half the bytes) or uint8 (a quarter: per tensor, value = q·scale + min).
// Both are TF.js weight-manifest quantisations (`quantization: {dtype, min?, scale?}`), which
// tf.io decodes back to float32 when a model loads: in the browser (tfl.loadLayersModel) and in
// Node (layersModelFromFiles → tf.io.fromMemory), so predict, serve, export --format onnx and the
// page all run the same dequantised weights. Only the storage changes; every computation stays in
// float32.
import type * as tf from '@tensorflow/tfjs-core';
import { concatBytes } from '../util/bytes.js';
import { DTYPE_BYTES, type LayersFiles } from './layers_io.js';

export const WEIGHT_DTYPES = ['float32', 'float16', 'uint8'] as const;
export type WeightDtype = (typeof WEIGHT_DTYPES)[number];

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half-precision bits of `value`, rounded to nearest even (NaN and ±Inf kept). */
export function toFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the full mantissa right, rounding to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let out = mant >>> shift;
    if (rest > half || (rest === half && (out & 1) === 1)) out++;
    return sign | out;
  }
  const rest = mant & 0x1fff;
  let out = (e << 10) | (mant >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1) === 1)) out++; // a carry into the exponent is still right
  return sign | out;
}

/** The largest finite float16. */
const FLOAT16_MAX = 65504;

interface Encoded {
  spec: tf.io.WeightsManifestEntry;
  bytes: Uint8Array;
}

function encode(spec: tf.io.WeightsManifestEntry, values: Float32Array, dtype: 'float16' | 'uint8', where: string): Encoded {
  if (dtype === 'float16') {
    let peak = 0;
    for (const v of values) peak = Math.max(peak, Math.abs(v));
    if (!(peak <= FLOAT16_MAX)) throw new Error(`${where}: weight ${spec.name} has values up to ${peak}, beyond float16's ${FLOAT16_MAX}; keep this model in float32`);
    const out = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = toFloat16Bits(values[i]!);
    return { spec: { name: spec.name, shape: spec.shape, dtype: 'float32', quantization: { dtype: 'float16' } }, bytes: new Uint8Array(out.buffer) };
  }
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) throw new Error(`${where}: weight ${spec.name} is not finite; the model is damaged`);
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  if (values.length === 0) min = max = 0;
  // 256 levels over [min, max] of this tensor; a constant tensor is stored exactly (scale 0).
  const scale = max > min ? (max - min) / 255 : 0;
  const out = new Uint8Array(values.length);
  if (scale > 0) for (let i = 0; i < values.length; i++) out[i] = Math.min(255, Math.max(0, Math.round((values[i]! - min) / scale)));
  return { spec: { name: spec.name, shape: spec.shape, dtype: 'float32', quantization: { dtype: 'uint8', min, scale } }, bytes: out };
}

/**
 * The same member with its float32 weights stored as `dtype` (one weights file per manifest
 * group, named as before). Weights of other types are copied; a member already stored smaller is
 * refused (quantising twice would lose precision without saying so). `where` names the member in
 * errors.
 */
export function storeWeightsAs(files: LayersFiles, dtype: WeightDtype, where: string): LayersFiles {
  if (dtype === 'float32') return files;
  const weightFiles = new Map<string, Uint8Array>();
  const weightsManifest: tf.io.WeightsManifestConfig = [];
  for (const group of files.modelJson.weightsManifest) {
    const chunks = group.paths.map((p) => {
      const data = files.weightFiles.get(p);
      if (!data) throw new Error(`${where}: weight file "${p}" named in model.json is missing`);
      return data;
    });
    const joined = concatBytes(chunks);
    const encoded: Encoded[] = [];
    let offset = 0;
    for (const spec of group.weights) {
      if (spec.quantization) throw new Error(`${where}: weight ${spec.name} is already stored as ${spec.quantization.dtype}; export from the float32 model`);
      const size = spec.shape.reduce((a: number, b: number) => a * b, 1);
      const per = DTYPE_BYTES[spec.dtype];
      if (per === undefined) throw new Error(`${where}: weight ${spec.name} has dtype ${spec.dtype}, which cannot be re-stored`);
      const bytes = joined.slice(offset, offset + size * per);
      offset += size * per;
      encoded.push(spec.dtype === 'float32' ? encode(spec, new Float32Array(bytes.buffer), dtype, where) : { spec, bytes });
    }
    const data = concatBytes(encoded.map((e) => e.bytes));
    // One file for the group, under the group's first name (our members have one weights.bin).
    const name = group.paths[0]!;
    weightFiles.set(name, data);
    weightsManifest.push({ paths: [name], weights: encoded.map((e) => e.spec) });
  }
  return { modelJson: { ...files.modelJson, weightsManifest }, weightFiles };
}

/** How a member's weights are stored, from its manifest ('mixed' if its float32 weights differ). */
export function storedWeightDtype(modelJson: tf.io.ModelJSON): WeightDtype | 'mixed' {
  const kinds = new Set<string>();
  for (const group of modelJson.weightsManifest) for (const spec of group.weights) if (spec.dtype === 'float32') kinds.add(spec.quantization?.dtype ?? 'float32');
  if (kinds.size === 0) return 'float32';
  if (kinds.size > 1) return 'mixed';
  const [only] = kinds;
  return (WEIGHT_DTYPES as readonly string[]).includes(only!) ? (only as WeightDtype) : 'mixed';
}
