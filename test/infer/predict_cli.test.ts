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
import { phantomFrames, writePhantomPng, writePhantomVideo } from '../helpers/phantom_media.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;

/** Scores spread over [0.3, 1]: sets of one to three classes, depending on the input. */
const SPREAD: LevelCalibration = { n: 20, scores: Array.from({ length: 20 }, (_, i) => 0.3 + (0.7 * i) / 19) };
/** Every score 1: the threshold lets every class in, so every set abstains. */
const ALL: LevelCalibration = { n: 19, scores: new Array<number>(19).fill(1) };

function calibration(levels: ConformalCalibration['levels']): ConformalCalibration {
  return { kind: 'pocovid-conformal', version: 1, method: 'aps', lambda: 0, kReg: 0, classes: TINY_CLASSES, coverage: 0.9, calibratedOn: 'validation', levels };
}
const slice = (from: number, to: number): LevelCalibration => ({ n: to - from, scores: SPREAD.scores.slice(from, to) });
/** Sets at every level, each level with its own scores (and size). */
const spreadCal = calibration({ frame: SPREAD, video: slice(2, 18), patient: slice(5, 15) });
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
  // Two exams (patients): P001 with an image, a video (in a sub-folder) and an unreadable file; P002 with two images and a note.
  const p1 = join(work, 'exams', 'P001');
  const p2 = join(work, 'exams', 'P002');
  mkdirSync(join(p1, 'left'), { recursive: true });
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
    expect(video.predictionSet).toMatchObject({ classes: expectedSet(spreadCal, 'video', video.probabilities), level: 'video', calibrationSize: 16 });
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

interface ZoneJson {
  file: string;
  label: string | null;
  probabilities: Record<string, number> | null;
  error?: string;
}
interface ExamJson {
  exam: string;
  zones: ZoneJson[];
  label: string | null;
  probabilities: Record<string, number> | null;
  predictionSet?: { classes: string[]; level: string; decided: boolean; text: string; calibrationSize: number };
  refusedZones: number;
  failedZones: number;
}

/** The mean of the diagnosed zones' probabilities, computed here. */
function zoneMean(zones: ZoneJson[]): Record<string, number> {
  const diagnosed = zones.filter((z) => z.label !== null && z.probabilities);
  return Object.fromEntries(TINY_CLASSES.map((c) => [c, diagnosed.reduce((a, z) => a + z.probabilities![c]!, 0) / diagnosed.length]));
}

describe('pocovid predict --exam / --exam-map', () => {
  it('decides each zone as predict does, then each exam by the mean of its zones, with the exam-level set', async () => {
    const exams = [join(work, 'exams', 'P001'), join(work, 'exams', 'P002')];
    const { out, err, code } = await run(['predict', '--model', join(work, 'spread'), '--exam', '--json', '--max-frames', '3', ...exams]);
    expect(code).toBe(0);
    const results = JSON.parse(out) as ExamJson[];
    expect(results.map((e) => e.exam)).toEqual(['P001', 'P002']);
    expect(results.map((e) => e.zones.map((z) => z.file.slice(join(work, 'exams').length + 1)))).toEqual([
      ['P001/left/zone2.gif', 'P001/zone1.png', 'P001/zone3.mp4'],
      ['P002/zone1.png', 'P002/zone2.png'],
    ]);
    // The unreadable zone is reported, counted and left out; the note is named as skipped.
    expect(results[0]!.zones[2]!.error).toMatch(/zone3\.mp4: not a supported image/);
    expect(err).toContain('zone3.mp4');
    expect(err).toContain(`pocovid: skipped ${join(exams[1]!, 'notes.txt')}`);
    expect(results.map((e) => [e.failedZones, e.refusedZones])).toEqual([[1, 0], [0, 0]]);
    // Each zone's result is predict's for that file.
    const single = JSON.parse((await run(['predict', '--model', join(work, 'spread'), '--json', '--max-frames', '3', ...results.flatMap((e) => e.zones.map((z) => z.file))])).out) as ZoneJson[];
    expect(results.flatMap((e) => e.zones)).toEqual(single);
    for (const exam of results) {
      const want = zoneMean(exam.zones);
      for (const c of TINY_CLASSES) expect(exam.probabilities![c]).toBeCloseTo(want[c]!, 12);
      expect(exam.label).toBe(TINY_CLASSES[rankClasses(TINY_CLASSES.map((c) => want[c]!))[0]!]);
      expect(exam.predictionSet).toMatchObject({ classes: expectedSet(spreadCal, 'patient', want), level: 'patient', calibrationSize: 10 });
    }
    expect(err).toMatch(/^2 of 2 exams diagnosed; zones: 4 of 5 files diagnosed, 1 failed .*, 1 skipped/m);
  });

  it('prints each exam with its zones, says when the exam cannot be decided, and writes a CSV row per exam', async () => {
    const exams = [join(work, 'exams', 'P001'), join(work, 'exams', 'P002')];
    const maps = join(work, 'exam-maps');
    const text = await run(['predict', '--model', join(work, 'abstain'), '--exam', '--max-frames', '3', '--heatmaps', maps, ...exams]);
    // Heatmaps numbered across the exams: the two zone1.png files do not overwrite each other.
    expect(readdirSync(maps).sort()).toEqual(['0000_zone2.png', '0001_zone1.png', '0003_zone1.png', '0004_zone2.png']);
    const lines = text.out.split('\n');
    expect(lines[0]).toMatch(/^exam P001 {2}(covid|pneumonia|regular) — cannot decide between \w+, \w+ and \w+ \(90% set\) {2}covid=0\.\d{3} pneumonia=0\.\d{3} regular=0\.\d{3} {2}2 of 3 zones diagnosed, 1 failed$/);
    expect(lines[1]).toMatch(/^ {2}.*P001\/left\/zone2\.gif {2}/);
    expect(lines.find((l) => l.startsWith('exam P002'))).toMatch(/2 of 2 zones diagnosed$/);
    const csv = await run(['predict', '--model', join(work, 'abstain'), '--exam', '--csv', '--max-frames', '3', ...exams]);
    const [header, ...rows] = csv.out.trim().split('\n');
    expect(header).toBe('exam,zones,diagnosed_zones,refused_zones,failed_zones,label,p_covid,p_pneumonia,p_regular,set');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^P001,3,2,0,1,(covid|pneumonia|regular),0\.\d{4},0\.\d{4},0\.\d{4},\w+\|\w+\|\w+$/);
    expect(rows[1]).toMatch(/^P002,2,2,0,0,/);
  });

  it('leaves zones the guard refuses out of the exam and counts them', async () => {
    const features = PHANTOM_CLASSES.flatMap((label, k) => phantomFrames(label, 96, 8, 40 + k).map((f) => frameFeatures(f, 96, 96)));
    const guarded = join(work, 'guarded-calibrated');
    await saveModelDir(guarded, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(30)], guard: fitGuard(features), conformal: spreadCal });
    const exam = join(work, 'exams-guarded', 'P003');
    mkdirSync(exam, { recursive: true });
    await writePhantomPng(join(exam, 'zone1.png'), 'covid', 96, 40);
    await writePhantomPng(join(exam, 'zone2.png'), 'regular', 96, 42);
    await writePng(join(exam, 'zone3.png'), 40, 30, 1); // a test pattern: refused
    const { out } = await run(['predict', '--model', guarded, '--exam', '--json', exam]);
    const [result] = JSON.parse(out) as ExamJson[];
    expect(result!.zones.map((z) => z.label === null)).toEqual([false, false, true]);
    expect(result!.refusedZones).toBe(1);
    const want = zoneMean(result!.zones);
    for (const c of TINY_CLASSES) expect(result!.probabilities![c]).toBeCloseTo(want[c]!, 12);
    // Every zone refused: no exam decision and no set.
    const none = join(work, 'exams-guarded', 'P004');
    mkdirSync(none, { recursive: true });
    await writePng(join(none, 'zone1.png'), 40, 30, 2);
    const [refused] = JSON.parse((await run(['predict', '--model', guarded, '--exam', '--json', none])).out) as ExamJson[];
    expect(refused).toMatchObject({ exam: 'P004', label: null, probabilities: null, refusedZones: 1 });
    expect(refused!.predictionSet).toBeUndefined();
  });

  it('reads the exams from a CSV mapping files to patients, and names the mapping and the file when it is wrong', async () => {
    const mapping = join(work, 'exams', 'mapping.csv');
    writeFileSync(mapping, 'file,patient,site\nP002/zone1.png,anon-7,a\nP001/zone1.png,anon-3,b\nP002/zone2.png,anon-7,a\n');
    const { out, code } = await run(['predict', '--model', join(work, 'spread'), '--exam-map', mapping, '--json']);
    expect(code).toBe(0);
    const results = JSON.parse(out) as ExamJson[];
    expect(results.map((e) => [e.exam, e.zones.map((z) => z.file.split('/').slice(-2).join('/'))])).toEqual([
      ['anon-7', ['P002/zone1.png', 'P002/zone2.png']],
      ['anon-3', ['P001/zone1.png']],
    ]);
    const want = zoneMean(results[0]!.zones);
    for (const c of TINY_CLASSES) expect(results[0]!.probabilities![c]).toBeCloseTo(want[c]!, 12);

    const unknown = join(work, 'exams', 'unknown.csv');
    writeFileSync(unknown, 'file,patient\nP001/zone1.png,anon-3\nP001/missing.png,anon-3\n');
    const bad = await run(['predict', '--model', join(work, 'spread'), '--exam-map', unknown]);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe(`pocovid: ${unknown}: line 3: P001/missing.png does not exist (files are named relative to the CSV's folder)`);
    const noColumn = join(work, 'exams', 'no-column.csv');
    writeFileSync(noColumn, 'file,subject\nP001/zone1.png,anon-3\n');
    const missing = await run(['predict', '--model', join(work, 'spread'), '--exam-map', noColumn]);
    expect(missing.code).toBe(2);
    expect(missing.err).toBe(`pocovid: ${noColumn}: has no column patient: an exam mapping needs the columns file,patient (its header: file,subject)`);
    const twice = join(work, 'exams', 'twice.csv');
    writeFileSync(twice, 'file,patient\nP001/zone1.png,anon-3\nP001/zone1.png,anon-4\n');
    expect((await run(['predict', '--model', join(work, 'spread'), '--exam-map', twice])).err).toMatch(/twice\.csv: line 3: P001\/zone1\.png is listed already on line 2$/);
    // A folder row takes its files: one of them listed again is the same zone twice.
    const covered = join(work, 'exams', 'covered.csv');
    writeFileSync(covered, 'file,patient\nP002,anon-7\nP002/zone2.png,anon-8\n');
    expect((await run(['predict', '--model', join(work, 'spread'), '--exam-map', covered])).err).toBe(
      `pocovid: ${covered}: line 3: P002/zone2.png is listed already on line 2`,
    );
  });

  it('refuses what an exam cannot be: a file given with --exam, paths with --exam-map, a vote; and predict without paths', async () => {
    expect((await run(['predict', '--model', join(work, 'spread')])).err).toBe('pocovid: predict needs files or folders (or --exam-map <csv>)');
    const file = join(work, 'exams', 'P001', 'zone1.png');
    const notFolder = await run(['predict', '--model', join(work, 'spread'), '--exam', file]);
    expect(notFolder.err).toBe(`pocovid: ${file}: not a folder: with --exam each path is a folder holding one exam's zone files (or map files to patients with --exam-map <csv>)`);
    const both = await run(['predict', '--model', join(work, 'spread'), '--exam-map', join(work, 'exams', 'mapping.csv'), file]);
    expect(both.err).toMatch(/--exam-map names the files; give no paths/);
    const vote = await run(['predict', '--model', join(work, 'spread'), '--exam', '--aggregate', 'vote', join(work, 'exams', 'P001')]);
    expect(vote.err).toMatch(/--aggregate vote does not apply to exams/);
    expect(vote.code).toBe(2);
  });
});
