// The DICOM decoder on files the test writes with known pixels: every supported transfer syntax
// and photometric interpretation, the frame rate from each timing tag, the sampling rule videos
// use, and clear errors (naming the file, never a tag value) for what it cannot read.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDicom } from '../../src/media/dicom.js';
import { decodeDicomFrames } from '../../src/media/dicom_frames.js';
import { encodeVideo } from '../../src/media/ffmpeg.js';
import { sniffType } from '../../src/media/sniff.js';
import { decodeVideoFrames } from '../../src/media/video.js';
import { tempDir } from '../data/helpers.js';
import { IDENTIFYING, timing, writeDicom, type DicomSpec } from '../helpers/dicom_writer.js';

const ROWS = 12;
const COLS = 16;
const PIXELS = ROWS * COLS;

/** Grey frame k: a gradient that differs per frame. */
function greyFrame(k: number): Uint8Array {
  return Uint8Array.from({ length: PIXELS }, (_, i) => (i * 7 + k * 29) % 256);
}

/** Interleaved RGB frame k. */
function rgbFrame(k: number): Uint8Array {
  return Uint8Array.from({ length: PIXELS * 3 }, (_, i) => ((i % 3) * 80 + Math.floor(i / 3) * 5 + k * 13) % 256);
}

const greyToRgb = (grey: Uint8Array) => Uint8Array.from({ length: grey.length * 3 }, (_, i) => grey[Math.floor(i / 3)]!);
const toPlanar = (rgb: Uint8Array) => Uint8Array.from({ length: rgb.length }, (_, i) => rgb[(i % PIXELS) * 3 + Math.floor(i / PIXELS)]!);

async function open(spec: Partial<DicomSpec> & Pick<DicomSpec, 'syntax' | 'frames'>, name = 'clip.dcm') {
  return openDicom(name, await writeDicom({ rows: ROWS, columns: COLS, ...spec }));
}

async function allFrames(clip: Awaited<ReturnType<typeof open>>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let i = 0; i < clip.frameCount; i++) out.push(await clip.frame(i));
  return out;
}

let root: string;
let cleanup: () => void;
beforeAll(() => ({ dir: root, cleanup } = tempDir('dicom')));
afterAll(() => cleanup());

describe('sniffing', () => {
  it('recognises DICOM by the DICM marker at byte 128, whatever the name, and nothing else as DICOM', async () => {
    const bytes = await writeDicom({ syntax: 'explicit-le', rows: 2, columns: 2, frames: [new Uint8Array(4)] });
    expect(sniffType(bytes.subarray(0, 512))).toEqual({ kind: 'video', format: 'dicom' });
    const shifted = new Uint8Array(512);
    shifted.set(new TextEncoder().encode('DICM'), 127);
    expect(sniffType(shifted)).toBeUndefined();
  });
});

describe('transfer syntaxes', () => {
  const grey = Array.from({ length: 3 }, (_, k) => greyFrame(k));

  it.each(['explicit-le', 'implicit-le', 'explicit-be', 'deflated', 'rle'] as const)('%s: 8-bit grey frames come back exactly, as RGB', async (syntax) => {
    const clip = await open({ syntax, frames: grey });
    expect([clip.width, clip.height, clip.frameCount, clip.photometric]).toEqual([COLS, ROWS, 3, 'MONOCHROME2']);
    expect(await allFrames(clip)).toEqual(grey.map(greyToRgb));
  });

  it.each(['explicit-le', 'explicit-be', 'rle', 'implicit-le'] as const)('%s: 16-bit grey through the VOI window, else over the stored bits', async (syntax) => {
    const values = Uint16Array.from({ length: PIXELS }, (_, i) => i * 20);
    const windowed = await open({ syntax, bitsAllocated: 16, bitsStored: 12, frames: [values], extra: [
      { tag: [0x0028, 0x1050], vr: 'DS', value: '1000' },
      { tag: [0x0028, 0x1051], vr: 'DS', value: '1001' },
    ] });
    const expected = Array.from(values, (x) => (x <= 499.5 - 0.5 ? 0 : x > 1499.5 - 0.5 ? 255 : Math.round(((x - 999.5) / 1000 + 0.5) * 255)));
    expect(Array.from((await windowed.frame(0)).filter((_, i) => i % 3 === 0))).toEqual(expected);
    const plain = await open({ syntax, bitsAllocated: 16, bitsStored: 12, frames: [values] });
    expect(Array.from((await plain.frame(0)).filter((_, i) => i % 3 === 1))).toEqual(Array.from(values, (x) => Math.round((x * 255) / 4095)));
  });

  it('RLE: interleaved-equivalent RGB from planar segments', async () => {
    const frames = [rgbFrame(0), rgbFrame(1)];
    const clip = await open({ syntax: 'rle', samplesPerPixel: 3, planar: true, frames: frames.map(toPlanar) });
    expect(await allFrames(clip)).toEqual(frames);
  });

  it('JPEG baseline: each frame is the JPEG sharp decodes, close to the original pixels', async () => {
    const frames = [rgbFrame(0), rgbFrame(5), rgbFrame(9)];
    const spec = { syntax: 'jpeg' as const, samplesPerPixel: 3, photometric: 'YBR_FULL_422', frames };
    const clip = await open(spec);
    const decoded = await allFrames(clip);
    for (const [k, frame] of decoded.entries()) {
      const reference = await sharp(await sharp(frames[k]!, { raw: { width: COLS, height: ROWS, channels: 3 } }).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer()).raw().toBuffer();
      expect(Buffer.from(frame).equals(reference)).toBe(true);
      const error = frame.reduce((a, v, i) => a + Math.abs(v - frames[k]![i]!), 0) / frame.length;
      expect(error).toBeLessThan(4);
    }
    // Grey JPEG, each frame in three fragments: found through the offset table, and without one
    // by the JPEG markers.
    for (const emptyOffsetTable of [false, true]) {
      const greyClip = await open({ syntax: 'jpeg', frames: grey, fragmentsPerFrame: 3, emptyOffsetTable });
      for (const [k, frame] of (await allFrames(greyClip)).entries()) {
        expect(frame.reduce((a, v, i) => a + Math.abs(v - greyToRgb(grey[k]!)[i]!), 0) / frame.length).toBeLessThan(3);
      }
    }
    // RLE frames split over fragments with no table cannot be told apart: a clear error.
    await expect(open({ syntax: 'rle', frames: grey, fragmentsPerFrame: 2, emptyOffsetTable: true }).then((c) => c.frame(1))).rejects.toThrow(/6 pixel data fragments for 3 frames and no offset table/);
  });
});

describe('photometric interpretations', () => {
  // Forward JFIF conversion, the inverse of what the decoder applies.
  const toYbr = (rgb: Uint8Array) => {
    const out = new Uint8Array(rgb.length);
    for (let i = 0; i < rgb.length; i += 3) {
      const [r, g, b] = [rgb[i]!, rgb[i + 1]!, rgb[i + 2]!];
      out[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      out[i + 1] = Math.min(255, Math.max(0, Math.round(-0.168736 * r - 0.331264 * g + 0.5 * b + 128)));
      out[i + 2] = Math.min(255, Math.max(0, Math.round(0.5 * r - 0.418688 * g - 0.081312 * b + 128)));
    }
    return out;
  };
  const close = (a: Uint8Array, b: Uint8Array, tolerance: number) => a.every((v, i) => Math.abs(v - b[i]!) <= tolerance);

  it('RGB, interleaved and planar', async () => {
    const frame = rgbFrame(3);
    expect(await (await open({ syntax: 'explicit-le', samplesPerPixel: 3, frames: [frame] })).frame(0)).toEqual(frame);
    expect(await (await open({ syntax: 'explicit-le', samplesPerPixel: 3, planar: true, frames: [toPlanar(frame)] })).frame(0)).toEqual(frame);
  });

  it('YBR_FULL and YBR_FULL_422 become RGB', async () => {
    // Smooth colours, so that sharing chroma between two neighbours changes little.
    const rgb = Uint8Array.from({ length: PIXELS * 3 }, (_, i) => [40 + (Math.floor(i / 3) % COLS) * 8, 90, 200 - Math.floor(i / 3 / COLS) * 10][i % 3]!);
    const ybr = toYbr(rgb);
    const full = await (await open({ syntax: 'explicit-le', samplesPerPixel: 3, photometric: 'YBR_FULL', frames: [ybr] })).frame(0);
    expect(close(full, rgb, 2)).toBe(true);
    // 4:2:2 stores Y1 Y2 Cb Cr per pair of pixels; chroma averaged over the pair.
    const sub = new Uint8Array(PIXELS * 2);
    for (let p = 0; p < PIXELS / 2; p++) {
      sub[p * 4] = ybr[p * 6]!;
      sub[p * 4 + 1] = ybr[p * 6 + 3]!;
      sub[p * 4 + 2] = Math.round((ybr[p * 6 + 1]! + ybr[p * 6 + 4]!) / 2);
      sub[p * 4 + 3] = Math.round((ybr[p * 6 + 2]! + ybr[p * 6 + 5]!) / 2);
    }
    const half = await (await open({ syntax: 'explicit-le', samplesPerPixel: 3, photometric: 'YBR_FULL_422', frames: [sub] })).frame(0);
    expect(close(half, rgb, 8)).toBe(true);
    // And YBR_FULL through RLE (planar segments).
    const rle = await (await open({ syntax: 'rle', samplesPerPixel: 3, photometric: 'YBR_FULL', frames: [toPlanar(ybr)] })).frame(0);
    expect(rle).toEqual(full);
  });

  it('MONOCHROME1 is inverted', async () => {
    const frame = greyFrame(1);
    expect(await (await open({ syntax: 'explicit-le', photometric: 'MONOCHROME1', frames: [frame] })).frame(0)).toEqual(greyToRgb(frame.map((v) => 255 - v)));
  });

  it.each([8, 16] as const)('PALETTE COLOR with %i-bit tables', async (bits) => {
    const entries = 256;
    const table = (c: number) => Uint16Array.from({ length: entries }, (_, i) => ((i * (c + 1) * 3) % 256) * (bits === 16 ? 257 : 1));
    const extra: DicomSpec['extra'] = [];
    for (let c = 0; c < 3; c++) {
      extra.push({ tag: [0x0028, 0x1101 + c], vr: 'US', value: [entries, 10, bits] });
      extra.push({ tag: [0x0028, 0x1201 + c], vr: 'OW', value: table(c) });
    }
    const indices = greyFrame(2);
    const rgb = await (await open({ syntax: 'explicit-le', photometric: 'PALETTE COLOR', frames: [indices], extra })).frame(0);
    for (let i = 0; i < PIXELS; i++) {
      const index = Math.max(0, indices[i]! - 10); // below the first mapped value → entry 0
      for (let c = 0; c < 3; c++) expect(rgb[i * 3 + c]).toBe(bits === 16 ? table(c)[index]! >> 8 : table(c)[index]!);
    }
  });
});

describe('frame rate and sampling', () => {
  const frames = Array.from({ length: 20 }, (_, k) => greyFrame(k));

  it.each([
    ['Frame Time', [timing.frameTime(50)], 20],
    ['Cine Rate', [timing.cineRate(30)], 30],
    ['Recommended Display Frame Rate', [{ tag: [0x0008, 0x2144] as [number, number], vr: 'IS', value: '12' }], 12],
    ['Frame Time Vector', [timing.frameTimeVector([0, ...Array(19).fill(40)]), timing.incrementPointer(0x0018, 0x1065), timing.frameTime(100)], 25],
    ['Frame Time', [timing.frameTimeVector([0, ...Array(19).fill(40)]), timing.incrementPointer(0x0018, 0x1063), timing.frameTime(100)], 10],
    ['assumed (no timing tags)', [], 25],
  ] as const)('%s gives the native rate', async (source, extra, fps) => {
    const clip = await open({ syntax: 'explicit-le', frames, extra: [...extra] });
    expect(clip.fpsSource).toBe(source);
    expect(clip.fps).toBeCloseTo(fps, 9);
  });

  it('a variable Frame Time Vector times each frame by its own intervals', async () => {
    const intervals = [0, 10, 20, 30, 40, 50, 60, 70];
    const clip = await open({ syntax: 'explicit-le', frames: frames.slice(0, 8), extra: [timing.frameTimeVector(intervals)] });
    expect(clip.frameTimes).toEqual([0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.21, 0.28].map((t) => expect.closeTo(t, 9)));
    expect(clip.fps).toBeCloseTo(7 / 0.28, 9);
  });

  it('keeps the same native frames as a video of the same rate (every k-th, at most maxFrames, crop and size)', async () => {
    const file = join(root, 'twenty.dcm');
    writeFileSync(file, await writeDicom({ syntax: 'explicit-le', rows: ROWS, columns: COLS, frames, extra: [timing.frameTime(50)] }));
    const video = join(root, 'twenty.avi');
    await encodeVideo(video, frames.map(greyToRgb), COLS, ROWS, 20);
    for (const options of [{ fps: 3, maxFrames: 30 }, { fps: 5, maxFrames: 3 }, { fps: 7, maxFrames: 30, frameRange: [3, 15] as [number, number] }]) {
      const fromDicom = await decodeDicomFrames(file, options);
      const fromVideo = await decodeVideoFrames(video, options);
      expect(fromDicom.frames.map((f) => f.sourceFrame)).toEqual(fromVideo.frames.map((f) => f.sourceFrame));
      expect(fromDicom.frames.map((f) => f.time)).toEqual(fromVideo.frames.map((f) => expect.closeTo(f.time, 9)));
    }
    const { info, frames: sampled } = await decodeDicomFrames(file, { fps: 5, maxFrames: 2, crop: { top: 2, left: 4, size: 8 }, size: [4, 6] });
    expect(info).toMatchObject({ format: 'dicom', frameCount: 20, fps: 20, fpsSource: 'Frame Time', width: COLS, height: ROWS });
    expect(sampled.map((f) => [f.index, f.sourceFrame, f.width, f.height, f.rgb.length])).toEqual([[0, 0, 6, 4, 72], [1, 4, 6, 4, 72]]);
    const unresized = await decodeDicomFrames(file, { fps: 20, maxFrames: 1, crop: { top: 2, left: 4, size: 8 } });
    const expected = new Uint8Array(8 * 8 * 3);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) expected.fill(frames[0]![(y + 2) * COLS + x + 4]!, (y * 8 + x) * 3, (y * 8 + x) * 3 + 3);
    expect(unresized.frames[0]!.rgb).toEqual(expected);
  });
});

describe('patients and privacy', () => {
  it('gives the Patient ID (with its issuer) only through the hash it is handed', async () => {
    const clip = await open({ syntax: 'explicit-le', frames: [greyFrame(0)] });
    const seen: string[] = [];
    expect(clip.pseudonym((v) => (seen.push(v), 'hashed'))).toBe('hashed');
    expect(seen).toEqual([`${IDENTIFYING.IssuerOfPatientID}\u0000${IDENTIFYING.PatientID}`]);
    expect(JSON.stringify(clip)).not.toContain(IDENTIFYING.PatientID);
    const anonymous = await open({ syntax: 'explicit-le', frames: [greyFrame(0)], identifying: null });
    expect(anonymous.pseudonym(() => 'x')).toBeUndefined();
  });
});

describe('errors name the file and the reason, never a tag value', () => {
  const expectError = async (bytes: Uint8Array, pattern: RegExp, frame = false) => {
    let message = '';
    try {
      const clip = openDicom('scans/IM0001', bytes);
      if (frame) for (let i = 0; i < clip.frameCount; i++) await clip.frame(i);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^scans\/IM0001: /);
    expect(message).toMatch(pattern);
    for (const value of Object.values(IDENTIFYING)) expect(message).not.toContain(value);
  };

  it('truncated files', async () => {
    const whole = await writeDicom({ syntax: 'explicit-le', rows: ROWS, columns: COLS, frames: [greyFrame(0), greyFrame(1)] });
    await expectError(whole.subarray(0, whole.length - 100), /truncated/);
    await expectError(whole.subarray(0, 300), /truncated|corrupt/);
    const rle = await writeDicom({ syntax: 'rle', rows: ROWS, columns: COLS, frames: [greyFrame(0), greyFrame(1)] });
    await expectError(rle.subarray(0, rle.length - 40), /truncated|corrupt|decodes to/, true);
    const jpeg = await writeDicom({ syntax: 'jpeg', rows: ROWS, columns: COLS, frames: [greyFrame(0)] });
    const damaged = Uint8Array.from(jpeg);
    damaged.fill(0, jpeg.length - 200, jpeg.length - 20);
    await expectError(damaged, /corrupt JPEG|truncated|corrupt/, true);
  });

  it('a header that promises more frames than the pixel data holds', async () => {
    const bytes = Buffer.from(await writeDicom({ syntax: 'explicit-le', rows: ROWS, columns: COLS, frames: [greyFrame(0), greyFrame(1)] }));
    const at = bytes.indexOf(Buffer.from([0x28, 0x00, 0x08, 0x00, 0x49, 0x53])); // (0028,0008) IS
    bytes.write('3', at + 8, 'latin1');
    await expectError(bytes, /^scans\/IM0001: truncated: pixel data holds 384 bytes, 3 frame\(s\) of 16x12 need 576$/);
  });

  it('a deflated data set that inflates past the limit', async () => {
    const bytes = await writeDicom({ syntax: 'deflated', rows: ROWS, columns: COLS, frames: [greyFrame(0), greyFrame(1)] });
    let message = '';
    try {
      openDicom('bomb.dcm', bytes, { maxInflatedBytes: 200 });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('bomb.dcm: deflated DICOM data set inflates past 200 bytes (limit)');
  });

  it('an unsupported transfer syntax is named', async () => {
    const bytes = Buffer.from(await writeDicom({ syntax: 'jpeg', rows: ROWS, columns: COLS, frames: [greyFrame(0)] }));
    const at = bytes.indexOf('1.2.840.10008.1.2.4.50');
    bytes.write('1.2.840.10008.1.2.4.90', at, 'latin1'); // same length: JPEG 2000 Lossless
    await expectError(bytes, /transfer syntax JPEG 2000 Lossless \(1\.2\.840\.10008\.1\.2\.4\.90\) is not supported/);
  });

  it('a DICOMDIR, a file without pixels, an unsupported photometric interpretation', async () => {
    const dir = await writeDicom({ syntax: 'explicit-le', rows: 2, columns: 2, frames: [new Uint8Array(4)], sopClass: '1.2.840.10008.1.3.10' });
    await expectError(dir, /a DICOMDIR/);
    const noPixels = Buffer.from(await writeDicom({ syntax: 'explicit-le', rows: 2, columns: 2, frames: [new Uint8Array(4)] }));
    const pixelTag = noPixels.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
    await expectError(noPixels.subarray(0, pixelTag), /without pixel data/);
    await expectError(await writeDicom({ syntax: 'explicit-le', rows: 2, columns: 2, samplesPerPixel: 3, photometric: 'YBR_ICT', frames: [new Uint8Array(12)] }), /photometric interpretation YBR_ICT is not supported/);
  });
});
