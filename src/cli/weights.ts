// `pocovid weights fetch <model>` and `pocovid weights info <file>`, plus resolveWeightsOption for the
// `--weights <file>` option of the commands that build a model.
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { BadInputError, UnknownChoiceError } from '../errors.js';
import { getModelSpec } from '../models/index.js';
import type { WeightSource } from '../models/types.js';
import { defaultCacheDir, fetchWeights, sha256File } from '../models/weights/fetch.js';
import { detectContainer } from '../models/weights/formats.js';
import { readKerasH5 } from '../models/weights/keras_h5.js';
import { readSafetensorsHeader } from '../models/weights/safetensors.js';
import { elementCount, formatShape } from '../models/weights/tensors.js';
import { looksLikeTorchvision } from '../models/weights/torchvision.js';

/**
 * For `--weights <file>`: undefined stays undefined (use the defaults); a path must exist and be a weight
 * file we can read (HDF5 or safetensors), else BadInputError naming it. Returns the absolute path.
 */
export async function resolveWeightsOption(file: string | undefined): Promise<string | undefined> {
  if (file === undefined || file === '') return undefined;
  const path = resolve(file);
  if (!existsSync(path)) throw new BadInputError(file, 'no such weight file');
  if (!statSync(path).isFile()) throw new BadInputError(file, 'is not a file');
  await detectContainer(path);
  return path;
}

export function register(program: Command): void {
  const weights = program.command('weights').description('pretrained weight files: download into the cache, inspect');

  weights
    .command('fetch')
    .description('download a model\'s pretrained weights into the cache (verified by sha256)')
    .argument('<model>', 'model name (see `pocovid models`)')
    .option('--cache <dir>', 'cache folder (default $POCOVID_CACHE, $XDG_CACHE_HOME/pocovid or ~/.cache/pocovid)')
    .option('--source <name>', 'which weight set when a model has several: file name or format (default: the first)')
    .action(async (model: string, options: { cache?: string; source?: string }) => {
      const sources = getModelSpec(model).cfg.sources;
      if (sources.length === 0) {
        console.log(`${model} has no pretrained weights (it trains from scratch); nothing to fetch`);
        return;
      }
      const source = pickSource(sources, options.source);
      const path = await fetchWithBar(source, options.cache ?? defaultCacheDir());
      const sha256 = await sha256File(path);
      console.log(`${path}\nsha256 ${sha256}${source.sha256 ? ' (verified)' : ' (no reference hash recorded for this source)'}`);
    });

  weights
    .command('info')
    .description('list the tensors (names after conversion to ours), shapes and metadata of a weight file')
    .argument('<file>', 'HDF5 (Keras) or safetensors file')
    .option('--json', 'print JSON')
    .action(async (file: string, options: { json?: boolean }) => {
      const info = await describeWeightsFile(file);
      console.log(options.json ? JSON.stringify(info, null, 2) : formatInfo(info));
    });
}

function pickSource(sources: WeightSource[], wanted: string | undefined): WeightSource {
  if (wanted === undefined) return sources[0]!;
  const found = sources.find((s) => s.fileName === wanted || s.format === wanted);
  if (!found) throw new UnknownChoiceError('weight source', wanted, sources.flatMap((s) => [s.fileName, s.format]));
  return found;
}

async function fetchWithBar(source: WeightSource, cacheDir: string): Promise<string> {
  const bar = new SingleBar({
    format: `${source.fileName} [{bar}] {percentage}% {value}/{total} MB`,
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
  });
  let started = false;
  try {
    return await fetchWeights(source, {
      cacheDir,
      onProgress: (received, total) => {
        const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
        if (!started) {
          bar.start(total === undefined ? 0 : mb(total), 0);
          started = true;
        }
        bar.update(mb(received));
      },
    });
  } finally {
    if (started) bar.stop();
  }
}

export interface WeightsFileInfo {
  file: string;
  container: 'hdf5' | 'safetensors';
  /** keras-h5, keras-safetensors or torchvision-safetensors (inferred from the names). */
  format: string;
  metadata: Record<string, string>;
  parameters: number;
  tensors: { name: string; dtype: string; shape: number[] }[];
}

/** What `weights info` prints: safetensors are listed from the header alone (no data read). */
export async function describeWeightsFile(file: string): Promise<WeightsFileInfo> {
  const container = await detectContainer(file);
  let tensors: WeightsFileInfo['tensors'];
  let metadata: Record<string, string> = {};
  let format: string;
  if (container === 'hdf5') {
    format = 'keras-h5';
    tensors = [...(await readKerasH5(file))].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape }));
  } else {
    const header = await readSafetensorsHeader(file);
    metadata = header.metadata;
    format = looksLikeTorchvision(header.entries.keys()) ? 'torchvision-safetensors' : 'keras-safetensors';
    tensors = [...header.entries].map(([name, e]) => ({ name, dtype: e.dtype, shape: e.shape }));
  }
  const parameters = tensors.reduce((sum, t) => sum + elementCount(t.shape), 0);
  return { file, container, format, metadata, parameters, tensors };
}

function formatInfo(info: WeightsFileInfo): string {
  const width = Math.max(4, ...info.tensors.map((t) => t.name.length));
  const lines = [
    `${info.file}: ${info.format}, ${info.tensors.length} tensors, ${info.parameters.toLocaleString('en-US')} parameters`,
    ...Object.entries(info.metadata).map(([k, v]) => `  ${k}: ${v}`),
    '',
    ...info.tensors.map((t) => `${t.name.padEnd(width)}  ${t.dtype.padEnd(4)}  ${formatShape(t.shape)}`),
  ];
  return lines.join('\n');
}
