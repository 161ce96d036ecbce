// The fitted sector of every source of a dataset, kept with the dataset in sectors.json (fitted on
// first need from the stored frames, each source from all its frames, and written atomically), so
// training, evaluation and explanations mask the same geometry without fitting it again.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeJsonAtomicSync } from '../util/atomic.js';
import { readJsonFile } from '../util/json_file.js';
import { fitSector, type RgbFrame, type SectorGeometry } from './sector.js';
import type { ManifestRow } from './types.js';

export const SECTORS_FILE = 'sectors.json';
const VERSION = 1;

interface SectorsFile {
  version: number;
  /** Source → its geometry, and how many frames it was fitted on. */
  sources: Record<string, { frames: number; sector: SectorGeometry }>;
}

async function readFrame(path: string): Promise<RgbFrame> {
  const { data, info } = await sharp(path).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Source → sector for every source of `rows`; fits and records the ones sectors.json lacks. */
export async function datasetSectors(dir: string, rows: readonly ManifestRow[]): Promise<Map<string, SectorGeometry>> {
  const file = join(dir, SECTORS_FILE);
  const stored = existsSync(file) ? readJsonFile<SectorsFile>(file, { what: 'the fitted sectors of the dataset', hint: 'delete it to fit them again' }) : undefined;
  const known = stored?.version === VERSION ? stored.sources : {};
  const bySource = new Map<string, ManifestRow[]>();
  for (const row of rows) bySource.set(row.source, [...(bySource.get(row.source) ?? []), row]);
  let changed = false;
  const sources: SectorsFile['sources'] = { ...known };
  for (const [source, frames] of bySource) {
    if (known[source]?.frames === frames.length) continue;
    sources[source] = { frames: frames.length, sector: fitSector(await Promise.all(frames.map((r) => readFrame(join(dir, r.path))))) };
    changed = true;
  }
  if (changed) writeJsonAtomicSync(file, { version: VERSION, sources } satisfies SectorsFile);
  return new Map([...bySource.keys()].map((s) => [s, sources[s]!.sector]));
}
