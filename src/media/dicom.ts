// Ultrasound DICOM files (single images and multi-frame cine loops) → 8-bit RGB frames, parsed
// with dicom-parser (cornerstone's maintained parser). Transfer syntaxes: implicit and explicit
// VR little endian, explicit big endian, deflated, JPEG baseline (frames decoded by sharp) and
// RLE lossless (rle.ts); photometric interpretations in dicom_pixels.ts.
//
// Privacy: a DICOM header carries the patient's name, ID, birth date, accession number,
// institution... This module reads only what it needs to draw the pixels and time the frames,
// plus the Patient ID (and its issuer), which leaves it only through `pseudonym()`, already
// turned into a salted hash by the caller's function. No tag value ever goes into an error
// message, and dicom-parser's own messages (which name tags, never values) are the only other
// text that does.
import { createRequire } from 'node:module';
import { inflateRawSync } from 'node:zlib';
import type * as DicomParserModule from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import sharp from 'sharp';
import { BadInputError } from '../errors.js';
import { DEFAULT_LIMITS } from './ffmpeg.js';
import { samplesPerFrame, SUPPORTED_PHOTOMETRIC, toRgb8, type FrameSamples, type Palette, type PixelFormat } from './dicom_pixels.js';
import { decodeRleFrame } from './rle.js';

// dicom-parser ships a UMD bundle whose named exports Node's ESM loader cannot see.
const dicomParser = createRequire(import.meta.url)('dicom-parser') as typeof DicomParserModule;

/** Transfer syntaxes we decode, by UID. */
export const SUPPORTED_TRANSFER_SYNTAXES: Readonly<Record<string, string>> = {
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline (Process 1)',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
};

/** Names of the ones we do not decode, so that the error says what the file is. */
const OTHER_TRANSFER_SYNTAXES: Readonly<Record<string, string>> = {
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (Process 2 & 4)',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless (Process 14)',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.4.100': 'MPEG-2 Main Profile',
  '1.2.840.10008.1.2.4.101': 'MPEG-2 High Level',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 AVC/H.264 High Profile',
  '1.2.840.10008.1.2.4.103': 'MPEG-4 AVC/H.264 BD-compatible',
  '1.2.840.10008.1.2.4.104': 'MPEG-4 AVC/H.264 High Profile 2D video',
  '1.2.840.10008.1.2.4.105': 'MPEG-4 AVC/H.264 High Profile 3D video',
  '1.2.840.10008.1.2.4.106': 'MPEG-4 AVC/H.264 Stereo',
  '1.2.840.10008.1.2.4.107': 'HEVC/H.265 Main Profile',
  '1.2.840.10008.1.2.4.108': 'HEVC/H.265 Main 10 Profile',
  '1.2.840.10008.1.2.4.201': 'High-Throughput JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.203': 'High-Throughput JPEG 2000',
};

const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const RLE_LOSSLESS = '1.2.840.10008.1.2.5';
const DEFLATED = '1.2.840.10008.1.2.1.99';
const BIG_ENDIAN = '1.2.840.10008.1.2.2';
const MEDIA_DIRECTORY_SOP_CLASS = '1.2.840.10008.1.3.10';

const TAG = {
  mediaStorageSopClass: 'x00020002',
  transferSyntax: 'x00020010',
  directoryRecords: 'x00041220',
  recommendedFrameRate: 'x00082144',
  patientId: 'x00100020',
  issuerOfPatientId: 'x00100021',
  cineRate: 'x00180040',
  frameTime: 'x00181063',
  frameTimeVector: 'x00181065',
  samplesPerPixel: 'x00280002',
  photometric: 'x00280004',
  planarConfiguration: 'x00280006',
  numberOfFrames: 'x00280008',
  frameIncrementPointer: 'x00280009',
  rows: 'x00280010',
  columns: 'x00280011',
  bitsAllocated: 'x00280100',
  bitsStored: 'x00280101',
  pixelRepresentation: 'x00280103',
  burnedInAnnotation: 'x00280301',
  windowCenter: 'x00281050',
  windowWidth: 'x00281051',
  rescaleIntercept: 'x00281052',
  rescaleSlope: 'x00281053',
  paletteDescriptors: ['x00281101', 'x00281102', 'x00281103'],
  paletteData: ['x00281201', 'x00281202', 'x00281203'],
  segmentedPalette: 'x00281221',
  pixelData: 'x7fe00010',
  floatPixelData: 'x7fe00008',
  doublePixelData: 'x7fe00009',
} as const;

/** Where the frame rate came from (recorded, so that a user can see an assumed rate). */
export type FrameRateSource = 'Frame Time Vector' | 'Frame Time' | 'Cine Rate' | 'Recommended Display Frame Rate' | 'assumed (no timing tags)';

/** Rate assumed when a multi-frame file has no timing tag: the one videos without a rate get (probe.ts). */
export const ASSUMED_DICOM_FPS = 25;

export interface DicomClip {
  width: number;
  height: number;
  frameCount: number;
  /** Native frames per second. */
  fps: number;
  fpsSource: FrameRateSource;
  /** Seconds from the first frame, one per frame (from the Frame Time Vector when there is one). */
  frameTimes: number[];
  transferSyntax: { uid: string; name: string };
  photometric: string;
  /** Burned In Annotation (0028,0301) is YES: text (possibly names or IDs) may be drawn into the pixels. */
  burnedInAnnotation: boolean;
  /** Frame `index` (0-based) as interleaved 8-bit RGB, width × height × 3. */
  frame(index: number): Promise<Uint8Array>;
  /**
   * The Patient ID (with its issuer when present) passed through `hash`, which must be a salted
   * one-way function; undefined when the file has no Patient ID. The raw value is never returned.
   */
  pseudonym(hash: (issuerAndId: string) => string): string | undefined;
}

export interface DicomLimits {
  /** Largest frame (pixels). */
  maxPixels: number;
  /** Largest inflated data set of a deflated file (bytes). */
  maxInflatedBytes: number;
}

// A DICOM frame is held to the limit of a video frame (src/media/accept.ts: one rule for every reader).
const DEFAULT_DICOM_LIMITS: DicomLimits = { maxPixels: DEFAULT_LIMITS.maxPixels, maxInflatedBytes: 2 * 1024 ** 3 };
const MAX_SIDE = 8192;
const MAX_FRAMES = 100_000;

/** dicom-parser throws strings, Errors, or {exception, dataSet}; its texts name tags and offsets, never values. */
function parserMessage(err: unknown): string {
  const inner = err && typeof err === 'object' && 'exception' in err ? (err as { exception: unknown }).exception : err;
  const text = typeof inner === 'string' ? inner : inner instanceof Error ? inner.message : 'unknown parser error';
  return text.replace(/^dicomParser[.:]\s*/, '').replace(/^\w+:\s*/, '');
}

function parse(name: string, bytes: Uint8Array, limits: DicomLimits): DataSet {
  try {
    return dicomParser.parseDicom(bytes, {
      // Our own inflater, so that a deflate bomb stops at the limit instead of filling memory.
      inflater: (array: Uint8Array, position: number) => {
        const inflated = inflateRawSync(array.subarray(position), { maxOutputLength: limits.maxInflatedBytes });
        const full = new Uint8Array(position + inflated.length);
        full.set(array.subarray(0, position), 0);
        full.set(inflated, position);
        return full;
      },
    } as DicomParserModule.ParseDicomOptions);
  } catch (err) {
    if ((err as NodeJS.ErrnoException)?.code === 'ERR_BUFFER_TOO_LARGE') {
      throw new BadInputError(name, `deflated DICOM data set inflates past ${limits.maxInflatedBytes} bytes (limit)`);
    }
    const message = parserMessage(err);
    const partial = err && typeof err === 'object' && 'dataSet' in err ? (err as { dataSet?: DataSet }).dataSet : undefined;
    if (partial?.elements[TAG.pixelData]) throw new BadInputError(name, 'truncated: the pixel data runs past the end of the file');
    if (/overrun|past end|overread/i.test(message)) throw new BadInputError(name, `truncated: the file ends inside an element (${message})`);
    throw new BadInputError(name, `corrupt or not a DICOM file (${message})`);
  }
}

/** An IS or DS tag (a number written as text): every such tag read here is one of those. */
function number(ds: DataSet, tag: string, index = 0): number | undefined {
  const element = ds.elements[tag];
  if (!element || element.length === 0) return undefined;
  const value = ds.floatString(tag, index);
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

/** A US tag (binary) whatever the VR the file claims. */
function uint16(ds: DataSet, tag: string, index = 0): number | undefined {
  const element = ds.elements[tag];
  if (!element || element.length < 2 * (index + 1)) return undefined;
  return ds.uint16(tag, index);
}

function text(ds: DataSet, tag: string): string | undefined {
  const element = ds.elements[tag];
  if (!element || element.length === 0) return undefined;
  return ds.string(tag)?.trim() || undefined;
}

function within(bytes: Uint8Array, offset: number, length: number): boolean {
  return offset >= 0 && length >= 0 && offset + length <= bytes.length;
}

/** The Frame Time Vector's values (ms), read as DS text. */
function frameTimeVector(ds: DataSet): number[] | undefined {
  const count = ds.numStringValues(TAG.frameTimeVector);
  if (!count) return undefined;
  const values: number[] = [];
  for (let i = 0; i < count; i++) values.push(ds.floatString(TAG.frameTimeVector, i) ?? NaN);
  return values.every((v) => Number.isFinite(v) && v >= 0) ? values : undefined;
}

/**
 * Native rate and per-frame times. The Frame Increment Pointer says which tag times the frames;
 * without it the first of Frame Time Vector, Frame Time, Cine Rate, Recommended Display Frame
 * Rate that is usable. A vector's first entry is the (zero) time of frame 1, the rest intervals.
 */
function timing(ds: DataSet, frameCount: number): { fps: number; fpsSource: FrameRateSource; frameTimes: number[] } {
  const pointer = ds.elements[TAG.frameIncrementPointer]?.length === 4 ? ds.attributeTag(TAG.frameIncrementPointer) : undefined;
  const vector = frameTimeVector(ds);
  const frameTime = number(ds, TAG.frameTime);
  const fromVector = () => {
    if (!vector || vector.length < frameCount || frameCount < 2) return undefined;
    const times: number[] = [0];
    for (let i = 1; i < frameCount; i++) times.push(times[i - 1]! + vector[i]! / 1000);
    const span = times[frameCount - 1]!;
    return span > 0 ? { fps: (frameCount - 1) / span, fpsSource: 'Frame Time Vector' as const, frameTimes: times } : undefined;
  };
  const fromRate = (fps: number | undefined, fpsSource: FrameRateSource) =>
    fps !== undefined && Number.isFinite(fps) && fps > 0 && fps < 10_000 ? { fps, fpsSource, frameTimes: Array.from({ length: frameCount }, (_, i) => i / fps) } : undefined;
  const byFrameTime = () => fromRate(frameTime !== undefined && frameTime > 0 ? 1000 / frameTime : undefined, 'Frame Time');
  const ordered = pointer === TAG.frameTimeVector ? [fromVector, byFrameTime] : [byFrameTime, fromVector];
  for (const attempt of [...ordered, () => fromRate(number(ds, TAG.cineRate), 'Cine Rate'), () => fromRate(number(ds, TAG.recommendedFrameRate), 'Recommended Display Frame Rate')]) {
    const found = attempt();
    if (found) return found;
  }
  return { ...fromRate(ASSUMED_DICOM_FPS, 'assumed (no timing tags)')! };
}

/** The palette's three tables reduced to 8 bits per entry (PS3.3 C.7.6.3.1.5/6). */
function readPalette(name: string, ds: DataSet, littleEndian: boolean): Palette {
  if (ds.elements[TAG.segmentedPalette]) throw new BadInputError(name, 'segmented palette colour lookup tables are not supported');
  const tables: Uint8Array[] = [];
  let firstMapped = 0;
  for (let c = 0; c < 3; c++) {
    const descriptor = ds.elements[TAG.paletteDescriptors[c]!];
    const data = ds.elements[TAG.paletteData[c]!];
    if (!descriptor || descriptor.length < 6 || !data) throw new BadInputError(name, 'PALETTE COLOR without its lookup table descriptors and data');
    const entries = uint16(ds, TAG.paletteDescriptors[c]!, 0) || 65536;
    firstMapped = uint16(ds, TAG.paletteDescriptors[c]!, 1) ?? 0;
    const bits = uint16(ds, TAG.paletteDescriptors[c]!, 2) ?? 16;
    if (!within(ds.byteArray, data.dataOffset, data.length)) throw new BadInputError(name, 'truncated: the palette lookup table runs past the end of the file');
    const view = new DataView(ds.byteArray.buffer, ds.byteArray.byteOffset + data.dataOffset, data.length);
    // 8-bit tables are sometimes stored one entry per byte, sometimes one per 16-bit word: the
    // data length tells which (pydicom's rule).
    const bytesPerEntry = data.length >= entries * 2 ? 2 : 1;
    if (data.length < entries * bytesPerEntry) throw new BadInputError(name, `palette table holds ${data.length} bytes for ${entries} entries`);
    const table = new Uint8Array(entries);
    for (let i = 0; i < entries; i++) {
      const value = bytesPerEntry === 2 ? view.getUint16(i * 2, littleEndian) : view.getUint8(i);
      table[i] = bits > 8 ? value >> (bits - 8) : value & 0xff;
    }
    tables.push(table);
  }
  if (tables[0]!.length !== tables[1]!.length || tables[0]!.length !== tables[2]!.length) throw new BadInputError(name, 'the red, green and blue palette tables differ in length');
  return { firstMapped, red: tables[0]!, green: tables[1]!, blue: tables[2]! };
}

function pixelFormat(name: string, ds: DataSet, littleEndian: boolean, limits: DicomLimits): PixelFormat & { planar: boolean } {
  const rows = uint16(ds, TAG.rows);
  const columns = uint16(ds, TAG.columns);
  if (!rows || !columns) throw new BadInputError(name, 'DICOM file without Rows/Columns (not an image)');
  if (rows > MAX_SIDE || columns > MAX_SIDE || rows * columns > limits.maxPixels) {
    throw new BadInputError(name, `frame size ${columns}x${rows} is over the limit (${MAX_SIDE} a side, ${limits.maxPixels} pixels)`);
  }
  const samplesPerPixel = uint16(ds, TAG.samplesPerPixel) ?? 1;
  const bitsAllocated = uint16(ds, TAG.bitsAllocated) ?? 8;
  const bitsStored = uint16(ds, TAG.bitsStored) ?? bitsAllocated;
  const photometric = (text(ds, TAG.photometric) ?? (samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2')).toUpperCase();
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw new BadInputError(name, `${bitsAllocated} bits allocated per sample is not supported (8 or 16)`);
  if (!(bitsStored >= 1 && bitsStored <= bitsAllocated)) throw new BadInputError(name, `bits stored ${bitsStored} does not fit in ${bitsAllocated} bits allocated`);
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) throw new BadInputError(name, `${samplesPerPixel} samples per pixel is not supported (1 or 3)`);
  if (!(SUPPORTED_PHOTOMETRIC as readonly string[]).includes(photometric)) {
    throw new BadInputError(name, `photometric interpretation ${photometric} is not supported (supported: ${SUPPORTED_PHOTOMETRIC.join(', ')})`);
  }
  const center = number(ds, TAG.windowCenter);
  const width = number(ds, TAG.windowWidth);
  const slope = number(ds, TAG.rescaleSlope);
  const intercept = number(ds, TAG.rescaleIntercept);
  return {
    rows,
    columns,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    signed: uint16(ds, TAG.pixelRepresentation) === 1,
    photometric,
    planar: samplesPerPixel === 3 && uint16(ds, TAG.planarConfiguration) === 1,
    ...(center !== undefined && width !== undefined ? { window: { center, width } } : {}),
    ...(slope !== undefined || intercept !== undefined ? { rescale: { slope: slope ?? 1, intercept: intercept ?? 0 } } : {}),
    ...(photometric === 'PALETTE COLOR' ? { palette: readPalette(name, ds, littleEndian) } : {}),
  };
}

/** Bytes of frame `index` of encapsulated pixel data: one fragment per frame, or the offset table's grouping. */
function encapsulatedFrame(name: string, ds: DataSet, element: Element, index: number, frameCount: number, jpeg: boolean): Uint8Array {
  const fragments = element.fragments ?? [];
  for (const f of fragments) {
    if (!within(ds.byteArray, f.position, f.length)) throw new BadInputError(name, 'truncated: a pixel data fragment runs past the end of the file');
  }
  if (fragments.length === 0) throw new BadInputError(name, 'encapsulated pixel data without fragments');
  try {
    if (frameCount === 1) return dicomParser.readEncapsulatedPixelDataFromFragments(ds, element, 0, fragments.length);
    if (fragments.length === frameCount) {
      const f = fragments[index]!;
      return ds.byteArray.subarray(f.position, f.position + f.length);
    }
    const table = element.basicOffsetTable?.length ? element.basicOffsetTable : jpeg ? dicomParser.createJPEGBasicOffsetTable(ds, element) : undefined;
    if (!table || table.length !== frameCount) {
      throw new BadInputError(name, `${fragments.length} pixel data fragments for ${frameCount} frames and no offset table saying which frame is where`);
    }
    return dicomParser.readEncapsulatedImageFrame(ds, element, index, table);
  } catch (err) {
    if (err instanceof BadInputError) throw err;
    throw new BadInputError(name, `corrupt encapsulated pixel data (${parserMessage(err)})`);
  }
}

/** Native (uncompressed) samples of frame `index`. */
function nativeFrame(ds: DataSet, element: Element, format: PixelFormat & { planar: boolean }, index: number, littleEndian: boolean): FrameSamples {
  const count = samplesPerFrame(format);
  const bytesPerSample = format.bitsAllocated / 8;
  const frameBytes = count * bytesPerSample;
  const start = element.dataOffset + index * frameBytes;
  const view = new DataView(ds.byteArray.buffer, ds.byteArray.byteOffset + start, frameBytes);
  if (bytesPerSample === 1) return { values: ds.byteArray.subarray(start, start + frameBytes), planar: format.planar };
  const values = new Uint16Array(count);
  for (let i = 0; i < count; i++) values[i] = view.getUint16(i * 2, littleEndian);
  return { values, planar: format.planar };
}

/** Decodes a JPEG baseline frame with sharp (libjpeg turns YCbCr into RGB, as every DICOM toolkit does). */
async function jpegFrame(name: string, bytes: Uint8Array, format: PixelFormat, index: number): Promise<Uint8Array> {
  let data: Buffer;
  let info: sharp.OutputInfo;
  try {
    ({ data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_SIDE * MAX_SIDE }).raw().toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw new BadInputError(name, `frame ${index + 1}: corrupt JPEG data (${(err as Error).message})`);
  }
  if (info.width !== format.columns || info.height !== format.rows) {
    throw new BadInputError(name, `frame ${index + 1}: JPEG is ${info.width}x${info.height} but the header says ${format.columns}x${format.rows}`);
  }
  const pixels = format.rows * format.columns;
  if (info.channels === 3) return new Uint8Array(data.buffer, data.byteOffset, pixels * 3);
  if (info.channels !== 1) throw new BadInputError(name, `frame ${index + 1}: JPEG with ${info.channels} channels`);
  const out = new Uint8Array(pixels * 3);
  const invert = format.photometric === 'MONOCHROME1';
  for (let i = 0; i < pixels; i++) out.fill(invert ? 255 - data[i]! : data[i]!, i * 3, i * 3 + 3);
  return out;
}

/**
 * Opens a DICOM file already read into memory. Throws BadInputError (naming `name` and the reason,
 * never a tag value) for a DICOMDIR, a file without pixels, an unsupported transfer syntax or
 * pixel format, or a truncated/corrupt file.
 */
export function openDicom(name: string, bytes: Uint8Array, limits: Partial<DicomLimits> = {}): DicomClip {
  const resolved = { ...DEFAULT_DICOM_LIMITS, ...limits };
  if (bytes.length < 132 || String.fromCharCode(...bytes.subarray(128, 132)) !== 'DICM') throw new BadInputError(name, 'not a DICOM file (no DICM marker at byte 128)');
  const ds = parse(name, bytes, resolved);
  const sopClass = text(ds, TAG.mediaStorageSopClass);
  if (sopClass === MEDIA_DIRECTORY_SOP_CLASS || ds.elements[TAG.directoryRecords]) {
    throw new BadInputError(name, 'a DICOMDIR (the index of a DICOM export), not an image; the images are the other files of the export');
  }
  const uid = (text(ds, TAG.transferSyntax) ?? '').replace(/\0/g, '');
  const syntaxName = SUPPORTED_TRANSFER_SYNTAXES[uid];
  if (!syntaxName) {
    const known = OTHER_TRANSFER_SYNTAXES[uid];
    throw new BadInputError(name, `transfer syntax ${known ? `${known} (${uid})` : uid || '(none)'} is not supported (supported: ${Object.values(SUPPORTED_TRANSFER_SYNTAXES).join(', ')})`);
  }
  if (ds.elements[TAG.floatPixelData] || ds.elements[TAG.doublePixelData]) throw new BadInputError(name, 'floating-point pixel data is not supported');
  const element = ds.elements[TAG.pixelData];
  if (!element) throw new BadInputError(name, 'DICOM file without pixel data (not an image, e.g. a report or a presentation state)');
  const littleEndian = uid !== BIG_ENDIAN;
  const format = pixelFormat(name, ds, littleEndian, resolved);
  const frameCount = number(ds, TAG.numberOfFrames) ?? 1;
  if (!(Number.isInteger(frameCount) && frameCount >= 1 && frameCount <= MAX_FRAMES)) {
    throw new BadInputError(name, `Number of Frames ${frameCount} is not an integer in 1..${MAX_FRAMES}`);
  }
  const encapsulated = uid === JPEG_BASELINE || uid === RLE_LOSSLESS;
  if (encapsulated !== Boolean(element.encapsulatedPixelData)) {
    throw new BadInputError(name, encapsulated ? `${syntaxName} pixel data is not encapsulated (corrupt file)` : 'encapsulated pixel data in an uncompressed transfer syntax (corrupt file)');
  }
  if (encapsulated && uid === JPEG_BASELINE && format.bitsAllocated !== 8) throw new BadInputError(name, `JPEG baseline with ${format.bitsAllocated} bits allocated`);
  if (!encapsulated) {
    const needed = frameCount * samplesPerFrame(format) * (format.bitsAllocated / 8);
    const available = Math.min(element.length, ds.byteArray.length - element.dataOffset);
    if (available < needed) {
      throw new BadInputError(name, `truncated: pixel data holds ${Math.max(0, available)} bytes, ${frameCount} frame(s) of ${format.columns}x${format.rows} need ${needed}`);
    }
  }
  const { fps, fpsSource, frameTimes } = timing(ds, frameCount);
  const patientId = text(ds, TAG.patientId);
  const issuer = text(ds, TAG.issuerOfPatientId);

  return {
    width: format.columns,
    height: format.rows,
    frameCount,
    fps,
    fpsSource,
    frameTimes,
    transferSyntax: { uid, name: syntaxName },
    photometric: format.photometric,
    burnedInAnnotation: (text(ds, TAG.burnedInAnnotation) ?? '').toUpperCase() === 'YES',
    async frame(index: number): Promise<Uint8Array> {
      if (!(Number.isInteger(index) && index >= 0 && index < frameCount)) throw new BadInputError(name, `frame ${index} does not exist (${frameCount} frames)`);
      try {
        if (uid === JPEG_BASELINE) return await jpegFrame(name, encapsulatedFrame(name, ds, element, index, frameCount, true), format, index);
        if (uid === RLE_LOSSLESS) {
          const values = decodeRleFrame(encapsulatedFrame(name, ds, element, index, frameCount, false), format);
          return toRgb8({ values, planar: true }, format);
        }
        return toRgb8(nativeFrame(ds, element, format, index, littleEndian), format);
      } catch (err) {
        if (err instanceof BadInputError) throw err;
        throw new BadInputError(name, `frame ${index + 1}: ${(err as Error).message}`);
      }
    },
    pseudonym(hash) {
      return patientId === undefined ? undefined : hash(`${issuer ?? ''}\u0000${patientId}`);
    },
  };
}

/** True when the first bytes carry the DICOM Part 10 marker ('DICM' after the 128-byte preamble). */
export function isDicomHead(head: Uint8Array): boolean {
  return head.length >= 132 && head[128] === 0x44 && head[129] === 0x49 && head[130] === 0x43 && head[131] === 0x4d;
}
