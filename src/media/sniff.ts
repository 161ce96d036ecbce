// File-type detection from the first bytes, never from the name: uploads and files on disk are
// untrusted, and a playlist (m3u8) or concat list renamed .mp4 must never reach a demuxer that
// follows references. Only the formats below are accepted; everything else is rejected. The
// decoder (video.ts) forces the demuxer chosen here, so ffmpeg never probes an unknown file.
// DICOM (the 'DICM' marker after a 128-byte preamble) is recognised whatever the file is called:
// PACS exports often have no extension. It never reaches ffmpeg (dicom.ts decodes it).
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { BadInputError } from '../errors.js';

export type MediaKind = 'image' | 'video';

export interface SniffedType {
  /** 'video' for DICOM too: a clip of one or more frames (a single-frame file is reported as an image once read). */
  kind: MediaKind;
  /** Short format name (png, jpeg, mp4...). */
  format: string;
  /** The one ffmpeg demuxer allowed for it (videos, and images ffmpeg decodes). */
  demuxer?: string;
}

/** Bytes needed for a decision. */
export const SNIFF_BYTES = 512;

function ascii(bytes: Uint8Array, start: number, text: string): boolean {
  if (bytes.length < start + text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[start + i] !== text.charCodeAt(i)) return false;
  return true;
}

function startsWith(bytes: Uint8Array, prefix: number[]): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

const QUICKTIME_ATOMS = ['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip', 'pnot'];

/** The type of a file from its first bytes, or undefined when it is not one we accept. */
export function sniffType(bytes: Uint8Array): SniffedType | undefined {
  if (ascii(bytes, 128, 'DICM')) return { kind: 'video', format: 'dicom' };
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'image', format: 'png' };
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { kind: 'image', format: 'jpeg' };
  if (ascii(bytes, 0, 'RIFF') && ascii(bytes, 8, 'WEBP')) return { kind: 'image', format: 'webp' };
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return { kind: 'image', format: 'tiff' };
  // BMP: "BM" + a DIB header size we know (12, 40, 52, 56, 108, 124) at offset 14.
  if (ascii(bytes, 0, 'BM') && bytes.length >= 18 && [12, 40, 52, 56, 108, 124].includes(bytes[14]! | (bytes[15]! << 8))) {
    return { kind: 'image', format: 'bmp', demuxer: 'bmp_pipe' };
  }
  if (ascii(bytes, 0, 'GIF87a') || ascii(bytes, 0, 'GIF89a')) return { kind: 'video', format: 'gif', demuxer: 'gif' };
  if (ascii(bytes, 0, 'RIFF') && ascii(bytes, 8, 'AVI ')) return { kind: 'video', format: 'avi', demuxer: 'avi' };
  if (QUICKTIME_ATOMS.some((atom) => ascii(bytes, 4, atom))) return { kind: 'video', format: 'mp4', demuxer: 'mov' };
  if (startsWith(bytes, [0x1a, 0x45, 0xdf, 0xa3])) return { kind: 'video', format: 'matroska', demuxer: 'matroska' };
  if (startsWith(bytes, [0x00, 0x00, 0x01, 0xba])) return { kind: 'video', format: 'mpeg', demuxer: 'mpeg' };
  if (startsWith(bytes, [0x00, 0x00, 0x01, 0xb3])) return { kind: 'video', format: 'mpeg-video', demuxer: 'mpegvideo' };
  // MPEG-TS: sync byte 0x47 every 188 bytes.
  if (bytes.length >= 189 && bytes[0] === 0x47 && bytes[188] === 0x47 && (bytes.length < 377 || bytes[376] === 0x47)) {
    return { kind: 'video', format: 'mpegts', demuxer: 'mpegts' };
  }
  return undefined;
}

/** Every demuxer sniffType can choose: the ffmpeg whitelist. */
export const ALLOWED_DEMUXERS = ['bmp_pipe', 'gif', 'avi', 'mov', 'matroska', 'mpeg', 'mpegvideo', 'mpegts'] as const;

/** A readable description of what was found, for error messages. */
export function describeUnknown(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'the file is empty';
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 64));
  if (/^#EXTM3U/.test(head)) return 'an HLS playlist (m3u8) is not accepted';
  if (/^ffconcat/.test(head)) return 'an ffmpeg concat list is not accepted';
  if (/^\s*<(\?xml|svg)/i.test(head)) return 'SVG/XML is not accepted';
  return 'not a supported image (PNG, JPEG, BMP, WebP, TIFF), video (MP4/MOV, AVI, GIF, MPEG-PS/TS, MKV/WebM) or DICOM file';
}

const cannotRead = (file: string, err: unknown) =>
  new BadInputError(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });

/**
 * The first SNIFF_BYTES of a regular file. A named pipe or device given in place of a file is
 * refused before it is opened (opening a pipe already releases its writer); the open is
 * non-blocking and re-checked in case the path is swapped in between.
 */
export async function readHead(file: string): Promise<Uint8Array> {
  try {
    if (!(await stat(file)).isFile()) throw new BadInputError(file, 'not a regular file');
  } catch (err) {
    throw err instanceof BadInputError ? err : cannotRead(file, err);
  }
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw cannotRead(file, err);
  }
  try {
    if (!(await handle.stat()).isFile()) throw new BadInputError(file, 'not a regular file');
    const buffer = new Uint8Array(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } catch (err) {
    throw err instanceof BadInputError ? err : cannotRead(file, err);
  } finally {
    await handle.close();
  }
}

/** Reads the head of a file and sniffs its type, or throws BadInputError saying what it is instead. */
export async function sniffFile(file: string): Promise<SniffedType> {
  const head = await readHead(file);
  const type = sniffType(head);
  if (!type) throw new BadInputError(file, describeUnknown(head));
  return type;
}

/**
 * The type of a file from its first bytes, synchronously, or undefined when it cannot be read or
 * is not one we accept. For listing folders: files whose extension says nothing (PACS exports).
 */
export function sniffFileSync(file: string): SniffedType | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    if (!fstatSync(fd).isFile()) return undefined;
    const buffer = new Uint8Array(SNIFF_BYTES);
    return sniffType(buffer.subarray(0, readSync(fd, buffer, 0, SNIFF_BYTES, 0)));
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
