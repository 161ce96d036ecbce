import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { initEngine } from '../../src/engine/index.js';
import { loadModelDir, saveModelDir } from '../../src/model_dir/model_dir.js';
import { PHANTOM_CLASSES } from '../../src/data/phantom.js';
import { frameFeatures } from '../../src/guard/features.js';
import { fitGuard } from '../../src/guard/guard.js';
import { writeJpeg, writePng, writeVideo } from '../helpers/media_fixtures.js';
import { phantomFrames } from '../helpers/phantom_media.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;

async function run(args: string[]): Promise<{ out: string; err: string; code: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
  try {
    process.exitCode = 0;
    await main(['node', 'pocovid', ...args]);
    return { out: out.join('\n'), err: err.join('\n'), code: Number(process.exitCode ?? 0) };
  } finally {
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
  }
}

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-cli-'));
  for (const k of [0, 1]) {
    await saveModelDir(join(work, 'run', `fold-${k}`, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(30 + k)] });
  }
  const data = join(work, 'data', 'nested');
  mkdirSync(data, { recursive: true });
  await writePng(join(work, 'data', 'a.PNG'), 40, 30, 1);
  await writeJpeg(join(data, 'b.jpg'), 50, 50, 2);
  writeVideo(data, 'c.avi', 1);
  writeFileSync(join(data, 'broken.mp4'), 'not a video at all');
  writeFileSync(join(data, 'notes.txt'), 'ignored: unknown extension inside a folder');
});

afterEach(() => {
  process.exitCode = 0;
});

describe('pocovid predict / export', () => {
  it('predicts a folder (recursed) as JSON, reporting the bad file and going on', async () => {
    const heatmaps = join(work, 'maps');
    const { out, err, code } = await run(['predict', '--model', join(work, 'run'), join(work, 'data'), '--json', '--heatmaps', heatmaps, '--max-frames', '2']);
    expect(code).toBe(0);
    const results = JSON.parse(out);
    expect(results.map((r: { file: string }) => r.file.split('/').pop())).toEqual(['a.PNG', 'b.jpg', 'broken.mp4', 'c.avi']);
    expect(results[2].error).toMatch(/broken.mp4: not a supported image/);
    expect(err).toContain('broken.mp4');
    // A file of another kind in a folder is named, not passed over in silence.
    expect(err).toContain(`pocovid: skipped ${join(work, 'data', 'nested', 'notes.txt')}: not an image or video file name`);
    expect(err).toMatch(/3 of 4 files diagnosed, 1 failed \(unreadable, or the model gave no usable output: see the errors above\), 1 skipped \(not an image or video\)/);
    expect(results[3]).toMatchObject({ kind: 'video', frames: [{ index: 0 }, { index: 1 }] });
    expect(results[0].uncertainty.ensembleStd).toBeGreaterThan(0);
    expect(readdirSync(heatmaps)).toHaveLength(3);
  });

  it('writes CSV, and exits 1 when no file could be classified', async () => {
    const csv = await run(['predict', '--model', join(work, 'run'), '--fold', '1', join(work, 'data', 'a.PNG'), '--csv']);
    const [header, row] = csv.out.trim().split('\n');
    expect(header).toBe('file,kind,label,confidence,entropy,ensemble_std,mc_dropout_std,p_covid,p_pneumonia,p_regular,frames,flagged,reason,warning,heatmap,error');
    expect(row).toMatch(/a\.PNG,image,(covid|pneumonia|regular),0\.\d{4},/);
    const bad = await run(['predict', '--model', join(work, 'run'), join(work, 'data', 'nested', 'broken.mp4')]);
    expect(bad.code).toBe(1);
    const missing = await run(['predict', '--model', join(work, 'nowhere'), join(work, 'data')]);
    expect(missing.err).toMatch(/nowhere: not a training run/);
  });

  it('counts inputs the guard refused apart from diagnosed ones, and gives the reason in the CSV', async () => {
    const features = PHANTOM_CLASSES.flatMap((label, k) => phantomFrames(label, 96, 8, 40 + k).map((f) => frameFeatures(f, 96, 96)));
    const guarded = join(work, 'guarded');
    await saveModelDir(guarded, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(30)], guard: fitGuard(features) });
    const files = [join(work, 'data', 'a.PNG'), join(work, 'data', 'nested', 'b.jpg')];
    const lines = await run(['predict', '--model', guarded, ...files]);
    expect(lines.code).toBe(0);
    expect(lines.out).toMatch(/a\.PNG {2}no diagnosis {2}unlike the ultrasound frames this model was trained on/);
    expect(lines.out.trim().split('\n').pop()).toBe('0 of 2 files diagnosed, 2 refused by the not-ultrasound guard (no diagnosis) (research use only, not a diagnostic device)');
    const csv = await run(['predict', '--model', guarded, '--csv', ...files]);
    const rows = csv.out.trim().split('\n').slice(1);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row).toMatch(/,image,{9}1,true,"?unlike the ultrasound frames this model was trained on \(distance [\d.]+ > [\d.]+; furthest: [^,]+\)"?,,,$/);
    expect(csv.err).toMatch(/^0 of 2 files diagnosed, 2 refused/m);
  });

  it('exports a run as an ensemble or a single fold', async () => {
    const all = await run(['export', '--run', join(work, 'run'), '--out', join(work, 'exp-all'), '--no-page']);
    expect(all.out).toMatch(/wrote 2 member\(s\) of "tiny"/);
    expect((await loadModelDir(join(work, 'exp-all'))).members).toHaveLength(2);
    await run(['export', '--run', join(work, 'run'), '--out', join(work, 'exp-1'), '--fold', '1', '--no-page']);
    const one = await loadModelDir(join(work, 'exp-1'));
    expect(one.meta.source).toMatchObject({ folds: [1] });
  });
});
