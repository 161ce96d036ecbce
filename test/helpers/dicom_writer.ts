// Test helper: writes DICOM Part 10 files with known pixels, timing and identifying tags, in the
// transfer syntaxes the decoder supports (explicit/implicit little endian, explicit big endian,
// deflated, JPEG baseline via sharp, RLE lossless with a PackBits encoder). Deliberately small
// and separate from the decoder (which uses dicom-parser), so each checks the other; the
// pydicom test checks both against a third implementation.
import { deflateRawSync } from 'node:zlib';
import sharp from 'sharp';

export type Syntax = 'explicit-le' | 'implicit-le' | 'explicit-be' | 'deflated' | 'jpeg' | 'rle';

export const SYNTAX_UID: Record<Syntax, string> = {
  'implicit-le': '1.2.840.10008.1.2',
  'explicit-le': '1.2.840.10008.1.2.1',
  deflated: '1.2.840.10008.1.2.1.99',
  'explicit-be': '1.2.840.10008.1.2.2',
  jpeg: '1.2.840.10008.1.2.4.50',
  rle: '1.2.840.10008.1.2.5',
};

/** Identifying values the tests write and then look for in every output. */
export const IDENTIFYING = {
  PatientName: 'Doe^Jane^Q',
  PatientID: 'MRN-77341902',
  IssuerOfPatientID: 'ST-ELSEWHERE-HOSP',
  PatientBirthDate: '19580214',
  AccessionNumber: 'ACC99887766',
  InstitutionName: 'Saint Elsewhere General',
  ReferringPhysicianName: 'House^Gregory',
  OtherPatientIDs: 'ALT-5550123',
  PatientAddress: '42 Wallaby Way Sydney',
} as const;

export interface Element {
  tag: [number, number];
  vr: string;
  value: string | number[] | Uint8Array | Uint16Array;
}

export interface DicomSpec {
  syntax: Syntax;
  rows: number;
  columns: number;
  samplesPerPixel?: number;
  photometric?: string;
  bitsAllocated?: 8 | 16;
  bitsStored?: number;
  signed?: boolean;
  /** Planar Configuration (native and RLE with 3 samples). */
  planar?: boolean;
  /**
   * One entry per frame, in the stored layout the syntax expects: native → the samples exactly as
   * stored (interleaved or planar, 4:2:2 as Y Y Cb Cr); rle → planar samples; jpeg → interleaved
   * 8-bit RGB (3 samples) or grey (1), compressed by sharp.
   */
  frames: (Uint8Array | Uint16Array)[];
  /** Write Number of Frames even for one frame (default: only when more than one). */
  numberOfFrames?: boolean;
  /** Tags other than the pixel module: timing, identifying values, palette... */
  extra?: Element[];
  /** Identifying tags (default: IDENTIFYING; a key set to undefined is left out); null for none. */
  identifying?: Partial<Record<keyof typeof IDENTIFYING, string>> | null;
  /** Leave the Basic Offset Table empty (encapsulated syntaxes). */
  emptyOffsetTable?: boolean;
  /** Split each compressed frame into this many fragments (default 1), as some scanners do. */
  fragmentsPerFrame?: number;
  sopClass?: string;
  /** JPEG quality (default 95). */
  quality?: number;
}

const IDENTIFYING_TAGS: Record<keyof typeof IDENTIFYING, [number, number]> = {
  PatientName: [0x0010, 0x0010],
  PatientID: [0x0010, 0x0020],
  IssuerOfPatientID: [0x0010, 0x0021],
  PatientBirthDate: [0x0010, 0x0030],
  AccessionNumber: [0x0008, 0x0050],
  InstitutionName: [0x0008, 0x0080],
  ReferringPhysicianName: [0x0008, 0x0090],
  OtherPatientIDs: [0x0010, 0x1000],
  PatientAddress: [0x0010, 0x1040],
};
const IDENTIFYING_VR: Record<keyof typeof IDENTIFYING, string> = {
  PatientName: 'PN', PatientID: 'LO', IssuerOfPatientID: 'LO', PatientBirthDate: 'DA', AccessionNumber: 'SH',
  InstitutionName: 'LO', ReferringPhysicianName: 'PN', OtherPatientIDs: 'LO', PatientAddress: 'LO',
};

const LONG_LENGTH_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

function valueBytes(e: Element, littleEndian: boolean): Uint8Array {
  const { vr, value } = e;
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'latin1');
    return bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
  }
  if (value instanceof Uint8Array) return value.length % 2 === 0 ? value : Buffer.concat([value, Buffer.from([0])]);
  const words = value instanceof Uint16Array ? value : Uint16Array.from(value);
  // AT values are (group, element) pairs of 16-bit words, so they write as US does.
  const size = vr === 'UL' ? 4 : 2;
  const out = Buffer.alloc(words.length * size);
  for (let i = 0; i < words.length; i++) {
    if (size === 4) littleEndian ? out.writeUInt32LE(words[i]!, i * 4) : out.writeUInt32BE(words[i]!, i * 4);
    else if (vr === 'SS') littleEndian ? out.writeInt16LE(words[i]!, i * 2) : out.writeInt16BE(words[i]!, i * 2);
    else littleEndian ? out.writeUInt16LE(words[i]!, i * 2) : out.writeUInt16BE(words[i]!, i * 2);
  }
  return out;
}

function encodeElement(e: Element, explicit: boolean, littleEndian: boolean, undefinedLength = false): Buffer {
  const data = valueBytes(e, littleEndian);
  const u16 = (v: number) => {
    const b = Buffer.alloc(2);
    littleEndian ? b.writeUInt16LE(v) : b.writeUInt16BE(v);
    return b;
  };
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    littleEndian ? b.writeUInt32LE(v >>> 0) : b.writeUInt32BE(v >>> 0);
    return b;
  };
  const length = undefinedLength ? 0xffffffff : data.length;
  const head = [u16(e.tag[0]), u16(e.tag[1])];
  if (!explicit) head.push(u32(length));
  else if (LONG_LENGTH_VRS.has(e.vr)) head.push(Buffer.from(e.vr, 'latin1'), Buffer.alloc(2), u32(length));
  else head.push(Buffer.from(e.vr, 'latin1'), u16(length));
  return Buffer.concat([...head, undefinedLength ? Buffer.alloc(0) : data]);
}

/** PackBits over one segment, row by row as the standard recommends. */
export function packBits(bytes: Uint8Array, rowLength: number): Uint8Array {
  const out: number[] = [];
  for (let rowStart = 0; rowStart < bytes.length; rowStart += rowLength) {
    const row = bytes.subarray(rowStart, Math.min(bytes.length, rowStart + rowLength));
    let i = 0;
    while (i < row.length) {
      let run = 1;
      while (i + run < row.length && run < 128 && row[i + run] === row[i]) run++;
      if (run >= 3) {
        out.push(257 - run, row[i]!);
        i += run;
        continue;
      }
      let literal = 0;
      while (i + literal < row.length && literal < 128) {
        const j = i + literal;
        if (j + 2 < row.length && row[j] === row[j + 1] && row[j] === row[j + 2]) break;
        literal++;
      }
      out.push(literal - 1, ...row.subarray(i, i + literal));
      i += literal;
    }
  }
  return Uint8Array.from(out);
}

/** One RLE frame from planar samples (8- or 16-bit). */
export function encodeRleFrame(planes: Uint8Array | Uint16Array, rows: number, columns: number, samples: number): Uint8Array {
  const pixels = rows * columns;
  const bytesPerSample = planes instanceof Uint16Array ? 2 : 1;
  const segments: Uint8Array[] = [];
  for (let s = 0; s < samples; s++) {
    for (let b = 0; b < bytesPerSample; b++) {
      const plane = new Uint8Array(pixels);
      for (let i = 0; i < pixels; i++) {
        const v = planes[s * pixels + i]!;
        plane[i] = bytesPerSample === 2 ? (b === 0 ? v >> 8 : v & 0xff) : v;
      }
      const packed = packBits(plane, columns);
      segments.push(packed.length % 2 === 0 ? packed : Buffer.concat([packed, Buffer.from([0])]));
    }
  }
  const header = Buffer.alloc(64);
  header.writeUInt32LE(segments.length, 0);
  let offset = 64;
  segments.forEach((seg, k) => {
    header.writeUInt32LE(offset, 4 + 4 * k);
    offset += seg.length;
  });
  return Buffer.concat([header, ...segments]);
}

async function jpegFrame(frame: Uint8Array, spec: DicomSpec): Promise<Uint8Array> {
  const channels = (spec.samplesPerPixel ?? 1) as 1 | 3;
  return sharp(frame, { raw: { width: spec.columns, height: spec.rows, channels } })
    .jpeg({ quality: spec.quality ?? 95, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

/** Items of the encapsulated pixel data: the offset table (one entry per frame, pointing at its first fragment), then the fragments. */
function encapsulate(frames: Uint8Array[], emptyTable: boolean, perFrame = 1): Uint8Array {
  const item = (data: Uint8Array) => {
    const padded = data.length % 2 === 0 ? data : Buffer.concat([data, Buffer.from([0])]);
    const head = Buffer.alloc(8);
    head.writeUInt16LE(0xfffe, 0);
    head.writeUInt16LE(0xe000, 2);
    head.writeUInt32LE(padded.length, 4);
    return Buffer.concat([head, padded]);
  };
  const table = Buffer.alloc(emptyTable ? 0 : 4 * frames.length);
  const items: Uint8Array[] = [];
  let offset = 0;
  frames.forEach((frame, k) => {
    if (!emptyTable) table.writeUInt32LE(offset, 4 * k);
    const size = Math.ceil(frame.length / perFrame / 2) * 2;
    for (let start = 0; start < frame.length; start += size) {
      const it = item(frame.subarray(start, start + size));
      items.push(it);
      offset += it.length;
    }
  });
  const delimiter = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  return Buffer.concat([item(table), ...items, delimiter]);
}

/** Bytes of a complete DICOM Part 10 file. */
export async function writeDicom(spec: DicomSpec): Promise<Uint8Array> {
  const spp = spec.samplesPerPixel ?? 1;
  const bitsAllocated = spec.bitsAllocated ?? 8;
  const littleEndian = spec.syntax !== 'explicit-be';
  const explicit = spec.syntax !== 'implicit-le';
  const elements: Element[] = [
    { tag: [0x0008, 0x0016], vr: 'UI', value: spec.sopClass ?? (spec.frames.length > 1 ? '1.2.840.10008.5.1.4.1.1.3.1' : '1.2.840.10008.5.1.4.1.1.6.1') },
    { tag: [0x0008, 0x0018], vr: 'UI', value: '1.2.826.0.1.3680043.8.498.1' },
    { tag: [0x0008, 0x0060], vr: 'CS', value: 'US' },
    { tag: [0x0028, 0x0002], vr: 'US', value: [spp] },
    { tag: [0x0028, 0x0004], vr: 'CS', value: spec.photometric ?? (spp === 3 ? 'RGB' : 'MONOCHROME2') },
    { tag: [0x0028, 0x0010], vr: 'US', value: [spec.rows] },
    { tag: [0x0028, 0x0011], vr: 'US', value: [spec.columns] },
    { tag: [0x0028, 0x0100], vr: 'US', value: [bitsAllocated] },
    { tag: [0x0028, 0x0101], vr: 'US', value: [spec.bitsStored ?? bitsAllocated] },
    { tag: [0x0028, 0x0102], vr: 'US', value: [(spec.bitsStored ?? bitsAllocated) - 1] },
    { tag: [0x0028, 0x0103], vr: 'US', value: [spec.signed ? 1 : 0] },
  ];
  if (spp === 3) elements.push({ tag: [0x0028, 0x0006], vr: 'US', value: [spec.planar ? 1 : 0] });
  if (spec.frames.length > 1 || spec.numberOfFrames) elements.push({ tag: [0x0028, 0x0008], vr: 'IS', value: String(spec.frames.length) });
  const identifying = spec.identifying === null ? {} : { ...IDENTIFYING, ...spec.identifying };
  for (const [key, value] of Object.entries(identifying) as [keyof typeof IDENTIFYING, string | undefined][]) {
    if (value !== undefined) elements.push({ tag: IDENTIFYING_TAGS[key], vr: IDENTIFYING_VR[key], value });
  }
  elements.push(...(spec.extra ?? []));
  elements.sort((a, b) => a.tag[0] - b.tag[0] || a.tag[1] - b.tag[1]);

  let pixelElement: Buffer;
  if (spec.syntax === 'jpeg' || spec.syntax === 'rle') {
    const fragments = spec.syntax === 'jpeg'
      ? await Promise.all(spec.frames.map((f) => jpegFrame(f as Uint8Array, spec)))
      : spec.frames.map((f) => encodeRleFrame(f, spec.rows, spec.columns, spp));
    pixelElement = Buffer.concat([encodeElement({ tag: [0x7fe0, 0x0010], vr: 'OB', value: new Uint8Array() }, true, true, true), encapsulate(fragments, spec.emptyOffsetTable ?? false, spec.fragmentsPerFrame)]);
  } else {
    const all = bitsAllocated === 16
      ? Uint16Array.from(spec.frames.flatMap((f) => Array.from(f)))
      : Buffer.concat(spec.frames.map((f) => f as Uint8Array));
    pixelElement = encodeElement({ tag: [0x7fe0, 0x0010], vr: bitsAllocated === 16 ? 'OW' : 'OB', value: all }, explicit, littleEndian);
  }
  let dataset = Buffer.concat([...elements.map((e) => encodeElement(e, explicit, littleEndian)), pixelElement]);
  if (spec.syntax === 'deflated') dataset = deflateRawSync(dataset);

  const meta = [
    { tag: [0x0002, 0x0001], vr: 'OB', value: Uint8Array.from([0, 1]) },
    { tag: [0x0002, 0x0002], vr: 'UI', value: (elements.find((e) => e.tag[0] === 8 && e.tag[1] === 0x16)!.value as string) },
    { tag: [0x0002, 0x0003], vr: 'UI', value: '1.2.826.0.1.3680043.8.498.1' },
    { tag: [0x0002, 0x0010], vr: 'UI', value: SYNTAX_UID[spec.syntax] },
    { tag: [0x0002, 0x0012], vr: 'UI', value: '1.2.826.0.1.3680043.8.498' },
  ].map((e) => encodeElement(e as Element, true, true));
  const metaBody = Buffer.concat(meta);
  const groupLength = encodeElement({ tag: [0x0002, 0x0000], vr: 'UL', value: [metaBody.length] }, true, true);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), groupLength, metaBody, dataset]);
}

/** Frame timing tags. */
export const timing = {
  frameTime: (ms: number): Element => ({ tag: [0x0018, 0x1063], vr: 'DS', value: String(ms) }),
  cineRate: (fps: number): Element => ({ tag: [0x0018, 0x0040], vr: 'IS', value: String(fps) }),
  frameTimeVector: (ms: number[]): Element => ({ tag: [0x0018, 0x1065], vr: 'DS', value: ms.join('\\') }),
  incrementPointer: (group: number, element: number): Element => ({ tag: [0x0028, 0x0009], vr: 'AT', value: [group, element] }),
};
