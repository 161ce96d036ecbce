// Recognises a weight file by its bytes (not its extension) and reads it into our names and layouts.
import { open } from 'node:fs/promises';
import { BadInputError } from '../../errors.js';
import type { WeightSource } from '../types.js';
import { HDF5_SIGNATURE, readKerasH5 } from './keras_h5.js';
import { readSafetensors, readSafetensorsHeader } from './safetensors.js';
import { matchesAnyName, type TensorMap } from './tensors.js';
import { convertTorchvision, droppedByTorchvisionRule, looksLikeTorchvision } from './torchvision.js';

export type WeightFormat = WeightSource['format'];
export type ContainerKind = 'hdf5' | 'safetensors';

export interface WeightsFileContents {
  format: WeightFormat;
  /** Our names (`layer/weight`) and layouts. */
  tensors: TensorMap;
  /** File tensor names left out: those asked for, and those dropped by the torchvision rule (classifier, counters). */
  dropped: string[];
  /** safetensors `__metadata__` (empty for HDF5). */
  metadata: Record<string, string>;
}

// HDF5 allows a user block before the superblock, so the signature may sit at 0, 512, 1024, 2048...
const HDF5_SIGNATURE_OFFSETS = [0, 512, 1024, 2048, 4096];

/** Tells HDF5 from safetensors by the file's bytes; anything else is a BadInputError naming the file. */
export async function detectContainer(file: string): Promise<ContainerKind> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new BadInputError(file, `cannot read (${(err as Error).message})`, { cause: err });
  }
  try {
    const { size } = await handle.stat();
    const head = new Uint8Array(Math.min(size, 4096 + 8));
    await handle.read(head, 0, head.length, 0);
    for (const offset of HDF5_SIGNATURE_OFFSETS) {
      if (offset + 8 <= head.length && HDF5_SIGNATURE.every((byte, i) => head[offset + i] === byte)) return 'hdf5';
    }
    if (head.length >= 9) {
      const headerLength = new DataView(head.buffer).getBigUint64(0, true);
      if (headerLength > 0n && headerLength <= BigInt(size - 8) && head[8] === 0x7b /* '{' */) return 'safetensors';
    }
    throw new BadInputError(file, 'not a weight file: neither HDF5 (Keras .h5) nor safetensors');
  } finally {
    await handle.close();
  }
}

/**
 * Reads any supported weight file and converts it to our names and layouts. `format` is checked against
 * the file when given; otherwise it is inferred (HDF5 → keras-h5; safetensors with torchvision names →
 * torchvision-safetensors; other safetensors → keras-safetensors).
 */
export async function readWeightsFile(
  file: string,
  format?: WeightFormat,
  options: ReadWeightsOptions = {},
): Promise<WeightsFileContents> {
  const container = await detectContainer(file);
  if (container === 'hdf5') {
    if (format !== undefined && format !== 'keras-h5') {
      throw new BadInputError(file, `expected ${format} but the file is HDF5 (keras-h5)`);
    }
    const { kept, dropped } = dropNamed(await readKerasH5(file), options.dropped ?? []);
    return { format: 'keras-h5', tensors: kept, dropped, metadata: {} };
  }
  if (format === 'keras-h5') throw new BadInputError(file, 'expected keras-h5 (HDF5) but the file is safetensors');
  // Decide from the header which tensors to leave out, so that their bytes are never read
  // (timm's VGG-16 classifier is 4/5 of its file).
  const header = await readSafetensorsHeader(file);
  const torchNames = looksLikeTorchvision(header.entries.keys());
  const resolved: WeightFormat = format ?? (torchNames ? 'torchvision-safetensors' : 'keras-safetensors');
  if (resolved === 'keras-safetensors' && torchNames) {
    throw new BadInputError(file, 'expected keras-safetensors names ("layer/weight") but the file has torchvision names');
  }
  const patterns = options.dropped ?? [];
  const dropped = [...header.entries.keys()].filter(
    (name) => matchesAnyName(name, patterns) || (resolved === 'torchvision-safetensors' && droppedByTorchvisionRule(name)),
  );
  const skip = new Set(dropped);
  const contents = await readSafetensors(file, { include: (name) => !skip.has(name) });
  if (resolved === 'torchvision-safetensors') {
    const converted = convertTorchvision(contents.tensors, file);
    return { format: resolved, tensors: converted.tensors, dropped: [...dropped, ...converted.dropped], metadata: contents.metadata };
  }
  return { format: resolved, tensors: contents.tensors, dropped, metadata: contents.metadata };
}

export interface ReadWeightsOptions {
  /** File tensor names (as in the file, before conversion) to leave out; a trailing `*` matches a prefix. */
  dropped?: string[];
}

function dropNamed(tensors: TensorMap, patterns: readonly string[]): { kept: TensorMap; dropped: string[] } {
  if (patterns.length === 0) return { kept: tensors, dropped: [] };
  const kept: TensorMap = new Map();
  const dropped: string[] = [];
  for (const [name, tensor] of tensors) {
    if (matchesAnyName(name, patterns)) dropped.push(name);
    else kept.set(name, tensor);
  }
  return { kept, dropped };
}
