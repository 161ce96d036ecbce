// Reading a file's first bytes safely and sniffing its type (src/media/formats.ts) in Node.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { BadInputError } from '../errors.js';
import { describeUnknown, SNIFF_BYTES, sniffType, type SniffedType } from './formats.js';

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
