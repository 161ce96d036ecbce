// End to end on a tiny run folder made here: dataset (manifest + PNG frames), config.json, and a
// fold model saved with saveModelDir. Checks the files the commands write and the gallery links.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { formatManifest } from '../../src/data/manifest.js';
import type { ManifestRow } from '../../src/data/types.js';
import { initEngine } from '../../src/engine/index.js';
import { renderClassPictures } from '../../src/explain/class_run.js';
import { renderEmbedding } from '../../src/explain/embedding_run.js';
import { explain } from '../../src/explain/explain_run.js';
import { saveModelDir } from '../../src/infer/model_dir.js';
import { writeFileAtomicSync } from '../../src/util/atomic.js';
import { regionCfg, regionModel, SIZE } from './region_model.js';

let root: string;
let run: string;

/** A frame whose top-left quadrant has brightness `tl` and the rest `rest` (plus a little texture). */
function frame(tl: number, rest: number, seed: number): Uint8Array {
  const rgb = new Uint8Array(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const v = (y < SIZE / 2 && x < SIZE / 2 ? tl : rest) + ((x * 7 + y * 13 + seed * 5) % 11);
      rgb.fill(Math.min(255, v), (y * SIZE + x) * 3, (y * SIZE + x) * 3 + 3);
    }
  }
  return rgb;
}

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-explain-'));
  const dataset = join(root, 'dataset');
  const rows: ManifestRow[] = [];
  const add = async (path: string, label: 'covid' | 'regular', source: string, kind: 'video' | 'image', index: number, fold: number, rgb: Uint8Array): Promise<void> => {
    writeFileAtomicSync(join(dataset, path), await sharp(rgb, { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toBuffer());
    rows.push({ path, label, source, patient: source, probe: 'convex', kind, frame: index, time: index / 3, fold });
  };
  for (let i = 0; i < 3; i++) await add(`frames/cov_video_${i}.png`, 'covid', 'pocus_videos/convex/Cov_a.mp4', 'video', i, 0, frame(220, 40, i));
  for (let i = 0; i < 3; i++) await add(`frames/reg_video_${i}.png`, 'regular', 'pocus_videos/convex/Reg_b.mp4', 'video', i, 0, frame(0, 200, i));
  await add('frames/cov_image.png', 'covid', 'pocus_images/convex/Cov_c.png', 'image', 0, 0, frame(200, 90, 9));
  await add('frames/reg_image.png', 'regular', 'pocus_images/convex/Reg_d.png', 'image', 0, 0, frame(0, 120, 4));
  await add('frames/other_fold.png', 'covid', 'pocus_images/convex/Cov_e.png', 'image', 0, 1, frame(200, 90, 2));
  writeFileAtomicSync(join(dataset, 'manifest.csv'), formatManifest(rows));
  run = join(root, 'run');
  writeFileAtomicSync(join(run, 'config.json'), JSON.stringify({ data: dataset, model: 'region' }));
  const model = regionModel({ dropout: 0.5 });
  await saveModelDir(join(run, 'fold-0', 'model'), { name: 'region', classes: ['covid', 'regular'], cfg: regionCfg(), members: [model] });
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('pocovid explain on a run', () => {
  it('writes maps for every test frame, uncertainty, explanations.json and a gallery whose links all exist', async () => {
    const out = join(root, 'explain');
    // The first call also fills TF.js' own caches of constants, which stay by design; from then on
    // a call leaves nothing behind, neither its model nor anything per frame, whatever the number
    // of frames (8 test frames here, 1 and 3 from files below).
    const result = await explain({ run, methods: 'all', out, mcPasses: 8, seed: 3, occlusion: { patch: 4, stride: 4 } });
    const before = tf.memory().numTensors;
    const again = await explain({ run, methods: 'all', out: join(root, 'explain-again'), mcPasses: 8, seed: 3, occlusion: { patch: 4, stride: 4 } });
    expect(tf.memory().numTensors).toBe(before);
    const frames = (files: string[]) => explain({ run, files, methods: 'all', out: join(root, `explain-${files.length}`), mcPasses: 8, seed: 3, occlusion: { patch: 4, stride: 4 } });
    expect((await frames([join(root, 'dataset/frames/cov_image.png')])).items.flatMap((i) => i.frames)).toHaveLength(1);
    expect(tf.memory().numTensors).toBe(before);
    const three = ['cov_video_0', 'reg_video_1', 'reg_image'].map((f) => join(root, `dataset/frames/${f}.png`));
    expect((await frames(three)).items.flatMap((i) => i.frames)).toHaveLength(3);
    expect(tf.memory().numTensors).toBe(before);
    expect(result.methods).toEqual(['gradcam', 'cam', 'saliency', 'occlusion']);
    expect(result.items.map((i) => [i.name, i.kind, i.frames.length])).toEqual([
      ['pocus_videos/convex/Cov_a.mp4', 'video', 3],
      ['pocus_videos/convex/Reg_b.mp4', 'video', 3],
      ['pocus_images/convex/Cov_c.png', 'image', 1],
      ['pocus_images/convex/Reg_d.png', 'image', 1],
    ]);
    // The region model reads the top-left brightness: covid above ~23/255, else regular.
    expect(result.items.map((i) => i.predicted)).toEqual(['covid', 'regular', 'covid', 'regular']);
    for (const item of result.items) {
      expect(item.mcStd).not.toBeNull();
      expect(item.mcMean!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    expect(again.items.map((i) => i.mcStd)).toEqual(result.items.map((i) => i.mcStd));

    const html = readFileSync(join(out, 'index.html'), 'utf8');
    const links = [...html.matchAll(/src="([^"]+)"/g)].map((m) => m[1]!);
    expect(links.length).toBe(8 * 5);
    for (const link of links) {
      expect(link.startsWith('/') || link.includes('..')).toBe(false);
      expect(existsSync(join(out, link))).toBe(true);
    }
    expect(html).toContain('MC-dropout std');
    const figure = await sharp(join(out, 'maps/item-0000/f000_gradcam.png')).metadata();
    expect(figure.width).toBeGreaterThan(224);

    const csv = readFileSync(join(out, 'uncertainty.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('item,name,frame,time,label,predicted,p_covid,p_regular,mc_mean_covid,mc_mean_regular,mc_std_covid,mc_std_regular');
    expect(csv).toHaveLength(1 + 4 + 6); // header, one row per item, one per video frame
    const json = JSON.parse(readFileSync(join(out, 'explanations.json'), 'utf8'));
    expect(json.fold).toBe(0);
    expect(json.items).toHaveLength(4);
  });

  it('explains files given on the command line (through the CLI) and rejects CAM where it does not apply', async () => {
    const image = join(root, 'dataset/frames/cov_image.png');
    const out = join(root, 'cli');
    process.exitCode = undefined;
    await main(['node', 'pocovid', 'explain', '--run', run, '--method', 'gradcam,saliency', '--mc-passes', '2', '--out', out, image]);
    expect(process.exitCode).toBeUndefined();
    const json = JSON.parse(readFileSync(join(out, 'explanations.json'), 'utf8'));
    expect(json.items[0].name).toBe(image);
    expect(Object.keys(json.items[0].frames[0].maps)).toEqual(['gradcam', 'saliency']);

    const bnRun = join(root, 'bn-run');
    await saveModelDir(join(bnRun, 'fold-2', 'model'), { name: 'region', classes: ['covid', 'regular'], cfg: regionCfg(), members: [regionModel({ batchNorm: true })] });
    await expect(explain({ run: bnRun, files: [image], methods: ['cam'], out: join(root, 'bn') })).rejects.toThrow(/CAM needs .*use --method gradcam/);
    await expect(explain({ run: bnRun, methods: ['gradcam'], out: join(root, 'bn') })).rejects.toThrow(/bn-run: has no config\.json naming its dataset/);
    await expect(explain({ run: bnRun, fold: 1, files: [image], methods: ['gradcam'], out: join(root, 'bn') })).rejects.toThrow(/has no fold 1; folds present: 2/);
  });

  it('classes: one picture per class and a panel; tsne/pca: scatter, thumbnail map and coordinates', async () => {
    const out = join(root, 'vis');
    const before = tf.memory().numTensors;
    const { pictures, panel } = await renderClassPictures({ run, out, steps: 6, seed: 1 });
    // Neither leaves its model (or anything else) behind.
    expect(tf.memory().numTensors).toBe(before);
    expect(pictures.map((p) => p.file)).toEqual(['class-covid-grey.png', 'class-regular-grey.png']);
    for (const p of pictures) expect(p.endScore).toBeGreaterThan(p.startScore);
    expect(existsSync(panel)).toBe(true);

    for (const method of ['pca', 'tsne'] as const) {
      const result = await renderEmbedding({ run, out, method, seed: 2 });
      expect(result.points).toHaveLength(8);
      expect(existsSync(result.scatter)).toBe(true);
      expect(existsSync(result.thumbnails)).toBe(true);
      const rows = readFileSync(join(out, `embedding-${method}.csv`), 'utf8').trim().split('\n');
      expect(rows).toHaveLength(9);
    }
    expect(tf.memory().numTensors).toBe(before);
    const again = await renderEmbedding({ run, out: join(root, 'vis2'), method: 'tsne', seed: 2 });
    expect(again.points).toEqual((await renderEmbedding({ run, out: join(root, 'vis3'), method: 'tsne', seed: 2 })).points);
  });
});
