// A small dataset folder in the layout `pocovid data build` writes (manifest.csv, dataset.json,
// PNG frames), made directly from phantom frames so that training tests need no ffmpeg run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { PHANTOM_CLASSES, renderPhantomFrame, samplePhantomScene, type PhantomSite } from '../../src/data/phantom.js';
import type { DatasetInfo, ManifestRow } from '../../src/data/types.js';
import { createRng } from '../../src/util/rng.js';

export interface TinyDatasetOptions {
  /** Patients per class; each has one video. */
  patientsPerClass?: number;
  framesPerVideo?: number;
  folds?: number;
  size?: number;
  seed?: number;
  /** Another probe geometry and gain (a simulated second site). */
  site?: PhantomSite;
}

export async function writeTinyDataset(dir: string, options: TinyDatasetOptions = {}): Promise<ManifestRow[]> {
  const patients = options.patientsPerClass ?? 6;
  const frames = options.framesPerVideo ?? 3;
  const folds = options.folds ?? 3;
  const size = options.size ?? 48;
  const rng = createRng(options.seed ?? 0);
  mkdirSync(join(dir, 'frames'), { recursive: true });
  const rows: ManifestRow[] = [];
  for (let p = 0; p < patients; p++) {
    for (const label of PHANTOM_CLASSES) {
      const sceneRng = rng.fork();
      const scene = samplePhantomScene(label, size, sceneRng, options.site);
      const source = `pocus_videos/convex/${label}_phantom_${p}.mp4`;
      for (let f = 0; f < frames; f++) {
        const rgb = renderPhantomFrame(scene, f * 3, sceneRng);
        const path = `frames/${label}_${p}_${f}.png`;
        await sharp(Buffer.from(rgb), { raw: { width: size, height: size, channels: 3 } }).png().toFile(join(dir, path));
        // Patients are spread over the folds the same way for every class, so each fold has every class.
        rows.push({ path, label, source, patient: `${label}-${p}`, probe: 'convex', kind: 'video', frame: f, time: f / 3, fold: p % folds });
      }
    }
  }
  const header = 'path,label,source,patient,probe,kind,frame,time,fold';
  const lines = rows.map((r) => [r.path, r.label, r.source, r.patient, r.probe, r.kind, r.frame, r.time, r.fold].join(','));
  writeFileSync(join(dir, 'manifest.csv'), [header, ...lines].join('\n') + '\n');
  const perClass: Record<string, number> = {};
  const perFold: Record<string, Record<string, number>> = {};
  for (const r of rows) {
    perClass[r.label] = (perClass[r.label] ?? 0) + 1;
    const fold = (perFold[String(r.fold)] ??= {});
    fold[r.label] = (fold[r.label] ?? 0) + 1;
  }
  const info: DatasetInfo = {
    options: { synthetic: true, size, folds },
    classes: [...PHANTOM_CLASSES],
    folds,
    counts: { perClass, perFold },
    tools: {},
    skipped: [],
    synthetic: true,
  };
  writeFileSync(join(dir, 'dataset.json'), JSON.stringify(info, null, 2));
  return rows;
}
