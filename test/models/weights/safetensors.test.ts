import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BadInputError } from '../../../src/errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  halfToFloat,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from '../../../src/models/weights/safetensors.js';
import { transposeTensor, type NamedTensor } from '../../../src/models/weights/tensors.js';

const dir = mkdtempSync(join(tmpdir(), 'pocovid-st-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A safetensors file from a literal header and data section, to test what our writer never produces. */
function rawFile(header: unknown, data: Uint8Array, headerLength?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function u16le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  values.forEach((v, i) => new DataView(out.buffer).setUint16(i * 2, v, true));
  return out;
}

describe('safetensors', () => {
  it('round-trips F32 tensors, order and metadata through a file', async () => {
    const tensors: [string, NamedTensor][] = [
      ['conv1/kernel', { shape: [1, 1, 2, 3], data: Float32Array.from([1, -2, 3.5, 4, 5e-8, -6e6]) }],
      ['conv1/bias', { shape: [3], data: Float32Array.from([0.1, 0.2, 0.3]) }],
      ['scalar', { shape: [], data: Float32Array.from([7]) }],
      ['empty', { shape: [0, 4], data: new Float32Array(0) }],
    ];
    const file = join(dir, 'round.safetensors');
    await writeSafetensors(file, tensors, { model: 'tiny', note: 'ünïcode' });
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);

    const back = await readSafetensors(file);
    expect([...back.tensors.keys()]).toEqual(tensors.map(([n]) => n));
    for (const [name, t] of tensors) {
      expect(back.tensors.get(name)!.shape).toEqual(t.shape);
      expect(Array.from(back.tensors.get(name)!.data)).toEqual(Array.from(t.data));
      expect(back.dtypes.get(name)).toBe('F32');
    }
    expect(back.metadata).toEqual({ model: 'tiny', note: 'ünïcode' });

    const partial = await readSafetensors(file, { include: (name) => name !== 'conv1/kernel' });
    expect([...partial.tensors.keys()]).toEqual(['conv1/bias', 'scalar', 'empty']);
    expect(Array.from(partial.tensors.get('conv1/bias')!.data)).toEqual(Array.from(tensors[1]![1].data));

    const header = await readSafetensorsHeader(file);
    expect((header.dataStart - 8) % 8).toBe(0); // data section aligned
    expect(header.entries.get('conv1/bias')).toMatchObject({ dtype: 'F32', shape: [3] });
  });

  it('decodes F16, BF16, I64 and I32 to float32 exactly', async () => {
    const f16 = u16le([0x3c00, 0xc000, 0x3555, 0x7c00, 0x0001, 0x7bff, 0x8000, 0x0400]);
    const bf16 = u16le([0x3f80, 0xc040, 0x4049, 0xff80]);
    const i64 = new Uint8Array(16);
    new DataView(i64.buffer).setBigInt64(0, 42n, true);
    new DataView(i64.buffer).setBigInt64(8, -7n, true);
    const i32 = new Uint8Array(Int32Array.from([-3, 2147483647]).buffer);
    const data = new Uint8Array([...f16, ...bf16, ...i64, ...i32]);
    const file = rawFile(
      {
        half: { dtype: 'F16', shape: [2, 4], data_offsets: [0, 16] },
        brain: { dtype: 'BF16', shape: [4], data_offsets: [16, 24] },
        'bn1.num_batches_tracked': { dtype: 'I64', shape: [2], data_offsets: [24, 40] },
        ints: { dtype: 'I32', shape: [2], data_offsets: [40, 48] },
      },
      data,
    );
    const { tensors, dtypes } = decodeSafetensors(file, 'mixed.safetensors');
    expect(Array.from(tensors.get('half')!.data)).toEqual([1, -2, Math.fround(0.333251953125), Infinity, 2 ** -24, 65504, -0, 2 ** -14]);
    expect(tensors.get('half')!.shape).toEqual([2, 4]);
    expect(Array.from(tensors.get('brain')!.data)).toEqual([1, -3, 3.140625, -Infinity]);
    expect(Array.from(tensors.get('bn1.num_batches_tracked')!.data)).toEqual([42, -7]);
    expect(Array.from(tensors.get('ints')!.data)).toEqual([-3, Math.fround(2147483647)]);
    expect(dtypes.get('brain')).toBe('BF16');
    const onDisk = join(dir, 'mixed.safetensors');
    writeFileSync(onDisk, file);
    const fromFile = await readSafetensors(onDisk);
    for (const [name, t] of tensors) expect(Array.from(fromFile.tensors.get(name)!.data)).toEqual(Array.from(t.data));
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
  });

  const f32x2 = new Uint8Array(8);
  const corruptCases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /shorter than the 8-byte header length/],
    ['header length past the end', rawFile({}, new Uint8Array(0), 1_000), /header length 1000 does not fit in a file of/],
    ['not JSON', (() => { const b = rawFile({ a: 1 }, new Uint8Array(0)); b[8] = 0x5b; return b; })(), /not valid UTF-8 JSON/],
    ['JSON array', rawFile([1, 2], new Uint8Array(0)), /not a JSON object/],
    ['unknown dtype', rawFile({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, f32x2), /tensor "a": unsupported dtype "C64"/],
    ['size does not match shape', rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32x2), /hold 8 bytes but F32 shape \[3\] needs 12/],
    ['offsets past the data', rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32x2), /past the end of the data \(8 bytes\)/],
    ['reversed offsets', rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, f32x2), /0 <= begin <= end/],
    [
      'overlap',
      rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32x2),
      /tensor "b" overlaps tensor "a"/,
    ],
    ['hole', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32x2), /4 unused bytes in the data before tensor "a"/],
    ['trailing bytes', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32x2), /4 bytes after the last tensor/],
    ['bad metadata', rawFile({ __metadata__: { n: 3 } }, new Uint8Array(0)), /"__metadata__" value for "n" is not a string/],
    ['bad shape', rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, new Uint8Array(0)), /shape \[-1\] is not a list/],
  ];
  it.each(corruptCases)('rejects a corrupt file (%s) with an error naming the file', async (_label, bytes, problem) => {
    const file = join(dir, 'corrupt.safetensors');
    writeFileSync(file, bytes);
    const err = await readSafetensors(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message.startsWith(`${file}: `)).toBe(true);
    expect((err as Error).message).toMatch(problem);
    await expect(readSafetensorsHeader(file)).rejects.toThrow(problem);
  });

  it('names a missing file', async () => {
    await expect(readSafetensors(join(dir, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors: cannot read/);
  });

  it('refuses to encode data that does not fit its shape', () => {
    expect(() => encodeSafetensors([['a', { shape: [2, 2], data: new Float32Array(3) }]])).toThrow(/needs 4 values, got 3/);
  });
});

describe('transposeTensor', () => {
  it('turns OIHW into HWIO', () => {
    // O=2, I=3, H=2, W=1: value encodes its index oihw as o*100 + i*10 + h.
    const shape = [2, 3, 2, 1];
    const data = new Float32Array(12);
    for (let o = 0; o < 2; o++) for (let i = 0; i < 3; i++) for (let h = 0; h < 2; h++) data[((o * 3 + i) * 2 + h) * 1] = o * 100 + i * 10 + h;
    const out = transposeTensor({ shape, data }, [2, 3, 1, 0]);
    expect(out.shape).toEqual([2, 1, 3, 2]);
    for (let h = 0; h < 2; h++) for (let i = 0; i < 3; i++) for (let o = 0; o < 2; o++) {
      expect(out.data[(h * 3 + i) * 2 + o]).toBe(o * 100 + i * 10 + h);
    }
  });
});
