import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { initEngine } from '../../src/engine/index.js';
import { loadModelDir, saveModelDir } from '../../src/model_dir/model_dir.js';
import { PHANTOM_CLASSES } from '../../src/data/phantom.js';
import { conformalSet, rankClasses, type ConformalCalibration, type ConformalLevel, type LevelCalibration } from '../../src/eval/conformal.js';
import { frameFeatures } from '../../src/guard/features.js';
import { fitGuard } from '../../src/guard/guard.js';
import { writeJpeg, writePng, writeVideo } from '../helpers/media_fixtures.js';
import { phantomFrames } from '../helpers/phantom_media.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;

/** Scores spread over [0.3, 1]: sets of one to three classes, depending on the input. */
const SPREAD: LevelCalibration = { n: 20, scores: Array.from({ length: 20 }, (_, i) => 0.3 + (0.7 * i) / 19) };
/** Every score 1: the threshold lets every class in, so every set abstains. */
const ALL: LevelCalibration = { n: 19, scores: new Array<number>(19).fill(1) };

function calibration(levels: ConformalCalibration['levels']): ConformalCalibration {
  return { kind: 'pocovid-conformal', version: 1, method: 'aps', lambda: 0, kReg: 0, classes: TINY_CLASSES, coverage: 0.9, calibratedOn: 'validation', levels };
}
/** Sets at every level. */
const spreadCal = calibration({ frame: SPREAD, video: SPREAD, patient: SPREAD });
/** Frames and exams always abstain; no video level (a video then gets no set). */
const abstainCal = calibration({ frame: ALL, patient: ALL });

/** The set conformalSet gives for probabilities keyed by class, as class names. */
function expectedSet(cal: ConformalCalibration, level: ConformalLevel, probabilities: Record<string, number>): string[] {
  return conformalSet(cal, level, TINY_CLASSES.map((c) => probabilities[c]!)).classes.map((k) => TINY_CLASSES[k]!);
}

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
  await saveModelDir(join(work, 'spread'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(30), tinyModel(31)], conformal: spreadCal });
  await saveModelDir(join(work, 'abstain'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(30)], conformal: abstainCal });
});
  mkdirSync(p2, { recursive: true });
  await writePhantomPng(join(p1, 'zone1.png'), 'covid', 96, 1);
  await writePhantomVideo(join(p1, 'left', 'zone2.gif'), 'pneumonia', 96, 4, 5, 2);
  writeFileSync(join(p1, 'zone3.mp4'), 'not a video at all');
  await writePhantomPng(join(p2, 'zone1.png'), 'regular', 96, 3);
  await writePhantomPng(join(p2, 'zone2.png'), 'pneumonia', 96, 4);
  writeFileSync(join(p2, 'notes.txt'), 'not a zone');
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
    expect(header).toBe('file,kind,label,confidence,entropy,ensemble_std,mc_dropout_std,p_covid,p_pneumonia,p_regular,set,frames,flagged,reason,warning,heatmap,error');
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
    for (const row of rows) expect(row).toMatch(/,image,{10}1,true,"?unlike the ultrasound frames this model was trained on \(distance [\d.]+ > [\d.]+; furthest: [^,]+\)"?,,,$/);
    expect(csv.err).toMatch(/^0 of 2 files diagnosed, 2 refused/m);
  });

  it('gives each result its prediction set in JSON, CSV and, when it abstains, the text line', async () => {
    const files = [join(work, 'data', 'a.PNG'), join(work, 'data', 'nested', 'c.avi')];
    const json = await run(['predict', '--model', join(work, 'spread'), '--json', '--max-frames', '3', ...files]);
    const [image, video] = JSON.parse(json.out);
    expect(image.predictionSet).toEqual({
      classes: expectedSet(spreadCal, 'frame', image.probabilities),
      coverage: 0.9,
      level: 'frame',
      decided: image.predictionSet.classes.length === 1,
      text: expect.any(String),
      calibrationSize: 20,
    });
    expect(video.predictionSet).toMatchObject({ classes: expectedSet(spreadCal, 'video', video.probabilities), level: 'video' });
    // Always abstaining at frame level; no video level, so the video gets no set but its diagnosis.
    const lines = await run(['predict', '--model', join(work, 'abstain'), '--max-frames', '3', ...files]);
    expect(lines.code).toBe(0);
    const abstained = JSON.parse((await run(['predict', '--model', join(work, 'abstain'), '--json', files[0]!])).out)[0];
    const ranked = rankClasses(TINY_CLASSES.map((c) => abstained.probabilities[c])).map((k) => TINY_CLASSES[k]);
    expect(abstained.predictionSet).toMatchObject({ classes: ranked, decided: false, text: `cannot decide between ${ranked[0]}, ${ranked[1]} and ${ranked[2]}` });
    expect(lines.out).toContain(`a.PNG  ${ranked[0]} — cannot decide between ${ranked[0]}, ${ranked[1]} and ${ranked[2]} (90% set)  confidence=`);
    expect(lines.out).toMatch(/c\.avi {2}(covid|pneumonia|regular) {2}confidence=/);
    const csv = await run(['predict', '--model', join(work, 'abstain'), '--csv', '--max-frames', '3', ...files]);
    const [header, imageRow, videoRow] = csv.out.trim().split('\n');
    expect(header).toBe('file,kind,label,confidence,entropy,ensemble_std,mc_dropout_std,p_covid,p_pneumonia,p_regular,set,frames,flagged,reason,warning,heatmap,error');
    expect(imageRow!.split(',')[10]).toBe(ranked.join('|'));
    expect(videoRow!.split(',')[10]).toBe('');
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
