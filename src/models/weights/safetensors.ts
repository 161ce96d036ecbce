// safetensors reader and writer (https://github.com/huggingface/safetensors, format only; our own code).
// Layout: u64 little-endian header length N, N bytes of JSON header, then the raw little-endian data.
// Header: { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { key: string } },
// offsets relative to the start of the data section. We are as strict as the reference reader:
// offsets must tile the data section exactly (no overlap, no hole, nothing past the end).
import { open, type FileHandle } from 'node:fs/promises';
import { BadInputError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic.js';
import type { NamedTensor, TensorMap } from './tensors.js';

/** dtypes we decode; every one is returned as float32 (integers are exact up to 2^24, enough for counters). */
export const SAFETENSORS_DTYPES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
} as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range within the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** In file order of the header (insertion order of the JSON object). */
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data section within the file (8 + header length). */
  dataStart: number;
}

export interface SafetensorsContents {
  tensors: TensorMap;
  /** The dtype each tensor had in the file (all are decoded to float32). */
  dtypes: Map<string, SafetensorsDtype>;
  metadata: Record<string, string>;
}

// The reference implementation refuses headers above 100 MB; a larger length is a corrupt file.
const MAX_HEADER_BYTES = 100_000_000;

/** Parses and validates the header. `source` names the file in errors. */
export function parseSafetensorsHeader(headerPrefix: Uint8Array, fileSize: number, source: string): SafetensorsHeader {
  if (fileSize < 8 || headerPrefix.length < 8) {
    throw new BadInputError(source, `not a safetensors file: ${fileSize} bytes is shorter than the 8-byte header length`);
  }
  const view = new DataView(headerPrefix.buffer, headerPrefix.byteOffset, headerPrefix.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES) || declared > BigInt(fileSize - 8)) {
    throw new BadInputError(source, `not a safetensors file: header length ${declared} does not fit in a file of ${fileSize} bytes`);
  }
  const headerLength = Number(declared);
  if (headerPrefix.length < 8 + headerLength) {
    throw new BadInputError(source, `truncated safetensors header (need ${headerLength} bytes, have ${headerPrefix.length - 8})`);
  }
  const dataStart = 8 + headerLength;
  const dataSize = fileSize - dataStart;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerPrefix.subarray(8, dataStart)));
  } catch (err) {
    throw new BadInputError(source, `safetensors header is not valid UTF-8 JSON (${(err as Error).message})`, { cause: err });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new BadInputError(source, 'safetensors header is not a JSON object');
  }

  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(raw, source);
      continue;
    }
    entries.set(name, parseEntry(name, raw, dataSize, source));
  }
  checkTiling(entries, dataSize, source);
  return { entries, metadata, dataStart };
}

function parseMetadata(raw: unknown, source: string): Record<string, string> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new BadInputError(source, 'safetensors "__metadata__" must be an object of strings');
  }
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string') {
      throw new BadInputError(source, `safetensors "__metadata__" value for "${key}" is not a string`);
    }
  }
  return { ...(raw as Record<string, string>) };
}

function parseEntry(name: string, raw: unknown, dataSize: number, source: string): SafetensorsEntry {
  const where = `tensor "${name}"`;
  if (raw === null || typeof raw !== 'object') throw new BadInputError(source, `${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPES)) {
    throw new BadInputError(
      source,
      `${where}: unsupported dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(SAFETENSORS_DTYPES).join(', ')}`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new BadInputError(source, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw new BadInputError(source, `${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = elements * SAFETENSORS_DTYPES[dtype as SafetensorsDtype];
  if (end - begin !== expected) {
    throw new BadInputError(
      source,
      `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} shape [${shape.join(', ')}] needs ${expected}`,
    );
  }
  if (end > dataSize) {
    throw new BadInputError(source, `${where}: data_offsets end ${end} is past the end of the data (${dataSize} bytes); file truncated?`);
  }
  return { dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], begin, end };
}

function checkTiling(entries: Map<string, SafetensorsEntry>, dataSize: number, source: string): void {
  const sorted = [...entries].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = 0;
  let previous = '';
  for (const [name, entry] of sorted) {
    if (entry.begin < cursor) {
      throw new BadInputError(source, `tensor "${name}" overlaps tensor "${previous}" (byte ${entry.begin} < ${cursor})`);
    }
    if (entry.begin > cursor) {
      throw new BadInputError(source, `${entry.begin - cursor} unused bytes in the data before tensor "${name}" (offset ${cursor})`);
    }
    cursor = entry.end;
    previous = name;
  }
  if (cursor !== dataSize) {
    throw new BadInputError(source, `${dataSize - cursor} bytes after the last tensor are not described by the header`);
  }
}

/** Decodes one tensor's bytes to float32. */
export function decodeToFloat32(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const count = bytes.byteLength / SAFETENSORS_DTYPES[dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') {
    // A copy: aligned, owned by the caller, and independent of the file buffer.
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    switch (dtype) {
      case 'F64': out[i] = view.getFloat64(i * 8, true); break;
      case 'F16': out[i] = halfToFloat(view.getUint16(i * 2, true)); break;
      // bfloat16 is the upper half of a float32.
      case 'BF16': out[i] = bfloat16ToFloat(view.getUint16(i * 2, true)); break;
      case 'I64': out[i] = Number(view.getBigInt64(i * 8, true)); break;
      case 'I32': out[i] = view.getInt32(i * 4, true); break;
      case 'I16': out[i] = view.getInt16(i * 2, true); break;
      case 'I8': out[i] = view.getInt8(i); break;
      case 'U8': out[i] = view.getUint8(i); break;
      case 'BOOL': out[i] = view.getUint8(i) ? 1 : 0; break;
    }
  }
  return out;
}

const bf16Scratch = new DataView(new ArrayBuffer(4));
export function bfloat16ToFloat(bits: number): number {
  bf16Scratch.setUint32(0, bits << 16 >>> 0);
  return bf16Scratch.getFloat32(0);
}

/** IEEE 754 binary16 → number (subnormals, infinities and NaN included). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Parses a whole safetensors file held in memory. */
export function decodeSafetensors(bytes: Uint8Array, source: string): SafetensorsContents {
  const header = parseSafetensorsHeader(bytes, bytes.length, source);
  const tensors: TensorMap = new Map();
  const dtypes = new Map<string, SafetensorsDtype>();
  for (const [name, entry] of header.entries) {
    const raw = bytes.subarray(header.dataStart + entry.begin, header.dataStart + entry.end);
    tensors.set(name, { shape: entry.shape, data: decodeToFloat32(raw, entry.dtype) });
    dtypes.set(name, entry.dtype);
  }
  return { tensors, dtypes, metadata: header.metadata };
}

export interface ReadSafetensorsOptions {
  /** Which tensors to read (default all); the others' bytes are never read, so dropping a large classifier is free. */
  include?: (name: string) => boolean;
}

async function openForReading(file: string) {
  try {
    return await open(file, 'r');
  } catch (err) {
    throw new BadInputError(file, `cannot read (${(err as Error).message})`, { cause: err });
  }
}

async function readHeaderFrom(handle: FileHandle, file: string): Promise<SafetensorsHeader> {
  const { size } = await handle.stat();
  const prefix = new Uint8Array(Math.min(size, 8));
  await handle.read(prefix, 0, prefix.length, 0);
  let headerLength = 0;
  if (prefix.length === 8) {
    const declared = new DataView(prefix.buffer).getBigUint64(0, true);
    // Bad lengths are reported by parseSafetensorsHeader; only read what can exist.
    headerLength = Number(declared > BigInt(Math.min(MAX_HEADER_BYTES, size - 8)) ? 0n : declared);
  }
  const bytes = new Uint8Array(8 + headerLength);
  await handle.read(bytes, 0, bytes.length, 0);
  return parseSafetensorsHeader(bytes, size, file);
}

/** Reads a safetensors file tensor by tensor (memory: the tensors kept, not the whole file). */
export async function readSafetensors(file: string, options: ReadSafetensorsOptions = {}): Promise<SafetensorsContents> {
  const handle = await openForReading(file);
  try {
    const header = await readHeaderFrom(handle, file);
    const tensors: TensorMap = new Map();
    const dtypes = new Map<string, SafetensorsDtype>();
    for (const [name, entry] of header.entries) {
      if (options.include && !options.include(name)) continue;
      const length = entry.end - entry.begin;
      // F32 is read straight into the Float32Array's memory; other dtypes are decoded from a byte buffer.
      const target = entry.dtype === 'F32' ? new Float32Array(length / 4) : undefined;
      const bytes = target ? new Uint8Array(target.buffer) : new Uint8Array(length);
      const { bytesRead } = await handle.read(bytes, 0, length, header.dataStart + entry.begin);
      if (bytesRead !== length) throw new BadInputError(file, `tensor "${name}": file ended while reading its data`);
      tensors.set(name, { shape: entry.shape, data: target ?? decodeToFloat32(bytes, entry.dtype) });
      dtypes.set(name, entry.dtype);
    }
    return { tensors, dtypes, metadata: header.metadata };
  } finally {
    await handle.close();
  }
}

/** Reads only the header (for listing a file without loading its data). */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const handle = await openForReading(file);
  try {
    return await readHeaderFrom(handle, file);
  } finally {
    await handle.close();
  }
}

/** Encodes float32 tensors (dtype F32) in the given order, with optional string metadata. */
export function encodeSafetensors(tensors: Iterable<[string, NamedTensor]>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const parts: Float32Array[] = [];
  let offset = 0;
  for (const [name, tensor] of tensors) {
    if (name === '__metadata__') throw new Error('"__metadata__" is reserved and cannot name a tensor');
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    if (elements !== tensor.data.length) {
      throw new Error(`tensor "${name}": shape [${tensor.shape.join(', ')}] needs ${elements} values, got ${tensor.data.length}`);
    }
    header[name] = { dtype: 'F32', shape: tensor.shape, data_offsets: [offset, offset + tensor.data.byteLength] };
    offset += tensor.data.byteLength;
    parts.push(tensor.data);
  }
  // Pad the header with spaces to a multiple of 8 so that the data section is aligned (as the reference writer does).
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const withPadding = new Uint8Array(padded).fill(0x20);
    withPadding.set(json);
    json = withPadding;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let cursor = 8 + json.length;
  for (const part of parts) {
    out.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), cursor);
    cursor += part.byteLength;
  }
  return out;
}

/** Writes an F32 safetensors file atomically (temporary file, then rename). */
export async function writeSafetensors(
  file: string,
  tensors: Iterable<[string, NamedTensor]>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}
