import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pocovidAugmenter } from '../../src/data/augment.js';
import { buildDataset } from '../../src/data/build.js';
import { InputCache, loadBatch, openDataset, splitForFold } from '../../src/data/dataset.js';
import { writePhantom } from '../../src/data/phantom.js';
import type { DatasetInfo } from '../../src/data/types.js';
import { initEngine } from '../../src/engine/index.js';
import type { PretrainedCfg } from '../../src/models/types.js';
import { createRng } from '../../src/util/rng.js';
import { tempDir } from './helpers.js';

let root: string;
let cleanup: () => void;
let source: string;
const buildOptions = () => ({ source, out: join(root, 'ds'), fps: 5, maxFrames: 3, size: 32, folds: 3, seed: 1, quiet: true });

beforeAll(async () => {
  ({ dir: root, cleanup } = tempDir('build'));
  source = join(root, 'phantom');
  await writePhantom({ out: source, perClass: 4, imagesPerClass: 1, size: 48, frames: 6, seed: 3, quiet: true });
  // Things a real folder has: a corrupt video, an empty one, an unknown prefix, a sub-folder, a non-media file.
  writeFileSync(join(source, 'pocus_videos/convex/Cov_corrupt.mp4'), Buffer.alloc(5000, 1));
  writeFileSync(join(source, 'pocus_videos/convex/Reg_empty.avi'), '');
  writeFileSync(join(source, 'pocus_videos/convex/Subpleural_mystery.mp4'), Buffer.alloc(10, 0));
  writeFileSync(join(source, 'pocus_images/convex/Pneu_notes.txt'), 'hello');
  writeFileSync(join(source, 'pocus_videos/convex/Vir_phantom_x.gif'), Buffer.alloc(10, 0));
});
afterAll(() => cleanup());

describe('buildDataset over the phantom', () => {
  it('writes frames, a manifest and dataset.json; skips bad files with reasons; keeps patients in one fold', async () => {
    const result = await buildDataset(buildOptions());
    const { rows, info } = openDataset(join(root, 'ds'));
    expect(rows).toEqual(result.rows);
    expect(readFileSync(join(root, 'ds', 'manifest.csv'), 'utf8').split('\n')[0]).toBe('path,label,source,patient,probe,kind,frame,time,fold');
    // 4 videos × 3 frames + 1 image per class.
    expect(info.counts.perClass).toEqual({ covid: 13, pneumonia: 13, regular: 13 });
    expect(info.synthetic).toBe(true);
    expect(info.options).toMatchObject({ fps: 5, maxFrames: 3, size: 32, folds: 3, seed: 1, groupBy: 'patient', probes: ['convex'] });
    expect(info.tools.ffmpeg).toMatch(/\S/);
    const reasons = Object.fromEntries(info.skipped.map((s) => [s.source, s.reason]));
    expect(reasons['pocus_videos/convex/Cov_corrupt.mp4']).toMatch(/^not a supported image .*, video .* or DICOM file$/);
    expect(reasons['pocus_videos/convex/Reg_empty.avi']).toBe('the file is empty');
    expect(reasons['pocus_videos/convex/Subpleural_mystery.mp4']).toMatch(/unknown class prefix/);
    // Typed from the bytes, as predict types files: the name's extension decides nothing.
    expect(reasons['pocus_images/convex/Pneu_notes.txt']).toMatch(/^not a supported image \(PNG, JPEG, BMP, WebP, TIFF\), video \(MP4\/MOV, AVI, GIF, MPEG-PS\/TS, MKV\/WebM\) or DICOM file$/);
    expect(reasons['pocus_videos/convex/Vir_phantom_x.gif']).toBe('class viral not in --classes');
    // Patients from dataset_metadata.csv (some hold two videos), never split across folds.
    const foldOf = new Map<string, number>();
    for (const r of rows) {
      expect(r.patient).toMatch(/^phantom-\d{3}$/);
      expect(foldOf.get(r.patient) ?? r.fold).toBe(r.fold);
      foldOf.set(r.patient, r.fold);
    }
    const videosPerPatient = new Map<string, Set<string>>();
    for (const r of rows) videosPerPatient.set(r.patient, (videosPerPatient.get(r.patient) ?? new Set()).add(r.source));
    expect([...videosPerPatient.values()].some((s) => s.size >= 2)).toBe(true);
    // Frames are real PNGs of the asked size.
    const meta = await sharp(join(root, 'ds', rows[0]!.path)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 32, 32]);
    let total = 0;
    for (const counts of Object.values(info.counts.perFold)) total += Object.values(counts).reduce((a, b) => a + b, 0);
    expect(total).toBe(rows.length);
  });

  it('re-runs without redoing finished sources, resumes after an interruption and adds new sources', async () => {
    const out = join(root, 'ds');
    const first = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8')) as DatasetInfo;
    const again = await buildDataset(buildOptions());
    expect(again.decoded).toEqual([]);
    expect(again.reused).toHaveLength(15);
    // Simulate a kill: one source's frames gone, a temp file left behind.
    const victim = again.rows.find((r) => r.source.endsWith('Reg_phantom_002.avi'))!;
    rmSync(join(out, victim.path));
    writeFileSync(join(out, 'frames', 'convex', '.half.png.123.tmp'), 'partial');
    // And a new source arrives.
    const extra = readFileSync(join(source, 'pocus_videos/convex/Cov_phantom_001.mp4'));
    writeFileSync(join(source, 'pocus_videos/convex/Cov_phantom_new.mp4'), extra);
    const resumed = await buildDataset(buildOptions());
    expect(resumed.decoded.sort()).toEqual(['pocus_videos/convex/Cov_phantom_new.mp4', 'pocus_videos/convex/Reg_phantom_002.avi']);
    expect(existsSync(join(out, victim.path))).toBe(true);
    expect(readdirSync(join(out, 'frames', 'convex')).some((n) => n.endsWith('.tmp'))).toBe(false);
    expect(resumed.info.counts.perClass.covid).toBe(first.counts.perClass.covid! + 3);
    rmSync(join(source, 'pocus_videos/convex/Cov_phantom_new.mp4'));
  });

  it('is deterministic and groups by video on request', async () => {
    // Same folder: finished sources are reused, only the folds are recomputed.
    const a = await buildDataset({ ...buildOptions(), groupBy: 'video' });
    expect(a.decoded).toEqual([]);
    const b = await buildDataset({ ...buildOptions(), groupBy: 'video' });
    expect(b.rows).toEqual(a.rows);
    const foldOf = new Map<string, number>();
    for (const r of a.rows) {
      expect(foldOf.get(r.source) ?? r.fold).toBe(r.fold);
      foldOf.set(r.source, r.fold);
    }
    await expect(buildDataset({ ...buildOptions(), classes: ['covid', 'flu' as never] })).rejects.toThrow(/unknown class "flu"; valid: covid, pneumonia, regular, viral/);
  });
});

describe('reading batches', () => {
  const cfg: PretrainedCfg = { id: 'test.scratch', inputSize: [24, 24], channels: 3, channelOrder: 'rgb', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], camLayer: '', classifier: '', featureLayer: '', sources: [] };

  it('returns preprocessed inputs and one-hot labels without leaking tensors, with cache and augmentation', async () => {
    await initEngine();
    const { dir, rows } = openDataset(join(root, 'ds'));
    const split = splitForFold(rows, 0, { validationFraction: 0.25, seed: 0 });
    const pick = split.train.slice(0, 5);
    const cache = new InputCache();
    const before = tf.memory().numTensors;
    const batch = await loadBatch(dir, pick, cfg, { cache });
    expect(batch.x.shape).toEqual([5, 24, 24, 3]);
    expect(batch.y.shape).toEqual([5, 3]);
    expect(batch.labels).toEqual(pick.map((r) => r.label));
    const y = await batch.y.array();
    pick.forEach((r, i) => expect(y[i]![['covid', 'pneumonia', 'regular'].indexOf(r.label)]).toBe(1));
    // Values follow cfg: (pixel/255 - 0.5)/0.25 of the frame resized to the input size.
    const x = await batch.x.data();
    for (const [i, row] of pick.entries()) {
      const { data: pixels } = await sharp(join(dir, row.path)).resize(24, 24, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      expect(pixels.length).toBe(24 * 24 * 3);
      let worst = 0;
      pixels.forEach((p, j) => (worst = Math.max(worst, Math.abs(x[i * pixels.length + j]! - (p / 255 - 0.5) / 0.25))));
      expect(worst).toBeLessThan(1e-6);
    }
    expect(cache.size).toBe(5);
    const again = await loadBatch(dir, pick, cfg, { cache });
    expect(Array.from(await again.x.data())).toEqual(Array.from(x));
    const aug1 = await loadBatch(dir, pick, cfg, { cache, augment: pocovidAugmenter(), rng: createRng(9) });
    const aug2 = await loadBatch(dir, pick, cfg, { cache, augment: pocovidAugmenter(), rng: createRng(9) });
    expect(Array.from(await aug1.x.data())).toEqual(Array.from(await aug2.x.data()));
    expect(Array.from(await aug1.x.data())).not.toEqual(Array.from(x));
    tf.dispose([batch.x, batch.y, again.x, again.y, aug1.x, aug1.y, aug2.x, aug2.y]);
    expect(tf.memory().numTensors).toBe(before);
    await expect(loadBatch(dir, pick, cfg, { augment: pocovidAugmenter() })).rejects.toThrow(/needs an rng/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("preprocesses by the cfg's own numbers: per-channel mean and std, channel order, and luma for one channel", async () => {
    await initEngine();
    // A colour frame at the input size (no resize): R, G and B differ at every pixel.
    const dir = join(root, 'ds-colour');
    const size = 8;
    const rgb = new Uint8Array(size * size * 3);
    for (let i = 0; i < size * size; i++) rgb.set([(i * 37) % 256, (i * 11 + 60) % 256, 255 - ((i * 5) % 256)], i * 3);
    mkdirSync(dir, { recursive: true });
    await sharp(Buffer.from(rgb), { raw: { width: size, height: size, channels: 3 } }).png().toFile(join(dir, 'colour.png'));
    const row = { path: 'colour.png', label: 'pneumonia', source: 'c.png', patient: 'c', probe: 'convex', kind: 'image', frame: 0, time: 0, fold: 0 } as const;
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const colourCfg = (over: Partial<PretrainedCfg>): PretrainedCfg => ({ ...cfg, inputSize: [size, size], mean, std, ...over });
    const valuesOf = async (c: PretrainedCfg): Promise<Float32Array> => {
      const batch = await loadBatch(dir, [row], c);
      const values = (await batch.x.data()) as Float32Array;
      expect(batch.x.shape).toEqual([1, size, size, c.channels]);
      tf.dispose([batch.x, batch.y]);
      return values;
    };
    const expectValues = (got: Float32Array, want: (pixel: number, channel: number) => number, channels: number) => {
      let worst = 0;
      for (let i = 0; i < size * size; i++) for (let c = 0; c < channels; c++) worst = Math.max(worst, Math.abs(got[i * channels + c]! - want(i, c)));
      expect(worst).toBeLessThan(1e-5);
    };
    expectValues(await valuesOf(colourCfg({ channelOrder: 'rgb' })), (i, c) => (rgb[i * 3 + c]! / 255 - mean[c]!) / std[c]!, 3);
    expectValues(await valuesOf(colourCfg({ channelOrder: 'bgr' })), (i, c) => (rgb[i * 3 + 2 - c]! / 255 - mean[c]!) / std[c]!, 3);
    const luma = (i: number) => (0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!) / 255;
    expectValues(await valuesOf(colourCfg({ channels: 1, mean: [0.5], std: [0.25] })), (i) => (luma(i) - 0.5) / 0.25, 1);
    // 'grey' feeds the luma to every channel of an RGB network, each with its own mean and std.
    expectValues(await valuesOf(colourCfg({ colour: 'grey' })), (i, c) => (luma(i) - mean[c]!) / std[c]!, 3);
  });

  it('evicts least recently used inputs beyond the byte budget', () => {
    const cache = new InputCache(3 * 400);
    for (const k of ['a', 'b', 'c']) cache.set(k, new Float32Array(100));
    cache.get('a');
    cache.set('d', new Float32Array(100));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.size).toBe(3);
  });

  it('names the folder when it is not a dataset', () => {
    expect(() => openDataset(join(root, 'nothing'))).toThrow(/nothing\/dataset\.json: missing/);
  });
});
