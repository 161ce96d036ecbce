// A small zip reader (central directory, stored and deflate, zip64 sizes), enough for GitHub's
// repository archives. Entries are read with positional reads so the archive is never loaded
// whole; each is checked against its CRC-32.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { BadInputError } from '../errors.js';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  isDirectory: boolean;
  isSymlink: boolean;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}

export class ZipReader {
  private constructor(private readonly fd: number, readonly file: string, readonly entries: ZipEntry[]) {}

  static open(file: string): ZipReader {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      throw new BadInputError(file, `cannot open (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
    }
    try {
      return new ZipReader(fd, file, readCentralDirectory(fd, file));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** The entry's uncompressed bytes (CRC-checked). */
  read(entry: ZipEntry): Buffer {
    const local = readAt(this.fd, entry.localHeaderOffset, 30);
    if (local.length < 30 || local.readUInt32LE(0) !== LOCAL) throw new BadInputError(this.file, `${entry.name}: bad local header`);
    const start = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    const raw = readAt(this.fd, start, entry.compressedSize);
    if (raw.length !== entry.compressedSize) throw new BadInputError(this.file, `${entry.name}: truncated`);
    let data: Buffer;
    if (entry.method === 0) data = raw;
    else if (entry.method === 8) {
      try {
        data = zlib.inflateRawSync(raw);
      } catch (err) {
        throw new BadInputError(this.file, `${entry.name}: corrupt deflate data (${(err as Error).message})`, { cause: err });
      }
    } else throw new BadInputError(this.file, `${entry.name}: compression method ${entry.method} not supported (stored or deflate only)`);
    if (data.length !== entry.size) throw new BadInputError(this.file, `${entry.name}: size ${data.length}, expected ${entry.size}`);
    const crc = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
    if (crc && crc(data) >>> 0 !== entry.crc32 >>> 0) throw new BadInputError(this.file, `${entry.name}: CRC-32 mismatch`);
    return data;
  }

  close(): void {
    closeSync(this.fd);
  }
}

function readCentralDirectory(fd: number, file: string): ZipEntry[] {
  const size = fstatSync(fd).size;
  const tailLength = Math.min(size, 22 + 0xffff);
  const tail = readAt(fd, size - tailLength, tailLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new BadInputError(file, 'not a zip archive (no end of central directory)');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const locatorAt = size - tailLength + eocd - 20;
    const locator = readAt(fd, locatorAt, 20);
    if (locator.readUInt32LE(0) !== ZIP64_LOCATOR) throw new BadInputError(file, 'zip64 locator missing');
    const z64 = readAt(fd, Number(locator.readBigUInt64LE(8)), 56);
    if (z64.readUInt32LE(0) !== ZIP64_EOCD) throw new BadInputError(file, 'zip64 end of central directory missing');
    count = Number(z64.readBigUInt64LE(32));
    cdSize = Number(z64.readBigUInt64LE(40));
    cdOffset = Number(z64.readBigUInt64LE(48));
  }
  const cd = readAt(fd, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL) throw new BadInputError(file, `central directory entry ${i} is corrupt`);
    const nameLength = cd.readUInt16LE(p + 28);
    const extraLength = cd.readUInt16LE(p + 30);
    const commentLength = cd.readUInt16LE(p + 32);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLength);
    let size32: number = cd.readUInt32LE(p + 24);
    let compressed: number = cd.readUInt32LE(p + 20);
    let offset: number = cd.readUInt32LE(p + 42);
    // Zip64 extra field: the 64-bit values of whichever fields were saturated, in this order.
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (size32 === 0xffffffff) (size32 = Number(cd.readBigUInt64LE(q))), (q += 8);
        if (compressed === 0xffffffff) (compressed = Number(cd.readBigUInt64LE(q))), (q += 8);
        if (offset === 0xffffffff) offset = Number(cd.readBigUInt64LE(q));
      }
      e += 4 + len;
    }
    const mode = (cd.readUInt32LE(p + 38) >>> 16) & 0o170000;
    entries.push({
      name,
      method: cd.readUInt16LE(p + 10),
      crc32: cd.readUInt32LE(p + 16),
      compressedSize: compressed,
      size: size32,
      localHeaderOffset: offset,
      isDirectory: name.endsWith('/'),
      isSymlink: mode === 0o120000,
    });
    p = extraEnd + commentLength;
  }
  return entries;
}
