// The still-image pixel limit (src/media/accept.ts, 8192×8192): both image readers (the dataset
// builder's decodeImage and inference's decodeImageTo) accept an image exactly at the limit, refuse
// one pixel row more with the file named, and refuse a "pixel bomb" (a tiny PNG whose header claims
// 100000×100000) from its header, before anything is decoded.
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/data/image.js';
import { decodeImageTo } from '../../src/media/decode.js';
import { MAX_IMAGE_PIXELS } from '../../src/media/accept.js';
import { tempDir } from './helpers.js';

let root: string;
let cleanup: () => void;

beforeAll(() => {
  ({ dir: root, cleanup } = tempDir('image-limit'));
});

afterAll(() => cleanup());

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A valid PNG header for a width×height 8-bit RGB image, followed by only `rawBytes` bytes of (zero) pixel data. */
function pngWithLittleData(width: number, height: number, rawBytes: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(rawBytes))), chunk('IEND', Buffer.alloc(0))]);
}

const refusal = (width: number, height: number) => `image of ${width}×${height} pixels is over the limit of 67,108,864 pixels (8192×8192)`;

describe('the still-image pixel limit', () => {
  it('is 8192×8192', () => {
    expect(MAX_IMAGE_PIXELS).toBe(8192 * 8192);
  });

  it('accepts an image of exactly 8192×8192 and refuses 8192×8193, naming the file, in both readers', async () => {
    const atLimit = join(root, 'at_limit.png');
    const over = join(root, 'over_limit.png');
    // A flat colour compresses to a few hundred kB; the decode itself is the real one.
    await sharp({ create: { width: 8192, height: 8192, channels: 3, background: { r: 40, g: 90, b: 160 } } }).png({ compressionLevel: 1 }).toFile(atLimit);
    await sharp({ create: { width: 8192, height: 8193, channels: 3, background: { r: 40, g: 90, b: 160 } } }).png({ compressionLevel: 1 }).toFile(over);
    const decoded = await decodeImage(atLimit, 16);
    expect([decoded.width, decoded.height]).toEqual([16, 16]);
    expect(Array.from(decoded.rgb.slice(0, 3))).toEqual([40, 90, 160]);
    const frame = await decodeImageTo(atLimit, 16, 16);
    expect(frame.width * frame.height).toBe(256);
    await expect(decodeImage(over, 16)).rejects.toThrow(`${over}: ${refusal(8192, 8193)}`);
    await expect(decodeImageTo(over, 16, 16)).rejects.toThrow(`${over}: ${refusal(8192, 8193)}`);
  });

  it('refuses a PNG whose header claims 100000×100000 pixels from the header alone', async () => {
    const bomb = join(root, 'bomb.png');
    writeFileSync(bomb, pngWithLittleData(100_000, 100_000, 300));
    expect((await sharp(bomb, { limitInputPixels: false }).metadata()).width).toBe(100_000);
    // Had it been decoded, 3·10^10 bytes of RGB would have been asked for, or the missing pixel
    // data reported; the refusal names the size instead.
    await expect(decodeImage(bomb, 16)).rejects.toThrow(`${bomb}: ${refusal(100_000, 100_000)}`);
    await expect(decodeImageTo(bomb, 16, 16)).rejects.toThrow(`${bomb}: ${refusal(100_000, 100_000)}`);
    // The same file at a small size is decoded, and its missing rows give another error.
    const empty = join(root, 'empty.png');
    writeFileSync(empty, pngWithLittleData(8, 8, 30));
    await expect(decodeImage(empty, 16)).rejects.toThrow(`${empty}: not a readable image`);
  });
});
