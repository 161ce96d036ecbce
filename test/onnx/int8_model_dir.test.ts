// `export --format onnx --int8` and `--precision int8`: the int8 members and int8.json, frames that
// cannot be read, the label-free check, and refusing a missing or stale int8 file.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { initEngine } from '../../src/engine/index.js';
import { createPipeline } from '../../src/infer/pipeline.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { exportModelDirInt8, INT8_MEMBER_FILE, INT8_REPORT_FILE, type Int8Report } from '../../src/onnx/int8_model_dir.js';
import { trainFold } from '../../src/train/train_fold.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';
import { writeJpeg, writePng, writeVideo } from '../helpers/media_fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;
let dataset: string;
let run: string;
/** The phantom's classes, the order a trained model's outputs come in. */
const TRAINED_CLASSES = ['covid', 'pneumonia', 'regular'];

async function cli(args: string[]): Promise<{ out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    await main(['node', 'pocovid', ...args]);
    return { out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-int8-dir-'));
  dataset = join(work, 'data');
  await writeTinyDataset(dataset, { patientsPerClass: 4, framesPerVideo: 2, seed: 3 });
  run = join(work, 'run');
  for (const k of [0, 1]) await saveModelDir(join(run, `fold-${k}`, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(40 + k)] });
});

afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => {
  process.exitCode = 0;
});

describe('export --format onnx --int8', () => {
  it('writes an int8 graph per member and int8.json, calibration and check frames apart', async () => {
    const out = join(work, 'model');
    const { out: printed } = await cli(['export', '--run', run, '--out', out, '--no-page', '--format', 'onnx', '--int8', '--calibration', dataset, '--calibration-frames', '6', '--check-frames', '8']);
    for (const k of [0, 1]) expect(existsSync(join(out, `member-${k}`, INT8_MEMBER_FILE))).toBe(true);
    // The float ONNX files written beside the members are recorded with the others.
    const files = (JSON.parse(readFileSync(join(out, 'pocovid.json'), 'utf8')) as { files: Record<string, { bytes: number }> }).files;
    expect(files['member-1/model.onnx']!.bytes).toBe(readFileSync(join(out, 'member-1', 'model.onnx')).length);
    expect(printed).toMatch(/wrote .*member-0\/model\.int8\.onnx \(same label as float on \d+\.\d% of 8 check frames, largest probability change \d\.\d{3}/);
    expect(printed).toContain(`wrote ${out}/int8.json (calibration on 6 frames from 6 files, mse)`);
    // The CLI stores model.json's weights as float16 unless told otherwise (half the page's download).
    expect(printed).toMatch(/wrote 2 member\(s\) of "tiny" \(.*, weights stored as float16\)/);
    const manifest = (JSON.parse(readFileSync(join(out, 'member-0', 'model.json'), 'utf8')) as { weightsManifest: { weights: { quantization?: { dtype: string } }[] }[] }).weightsManifest;
    const weights = manifest.flatMap((group) => group.weights);
    expect(weights.length).toBeGreaterThan(0);
    expect(weights.every((w) => w.quantization?.dtype === 'float16')).toBe(true);
    const report = JSON.parse(readFileSync(join(out, INT8_REPORT_FILE), 'utf8')) as Int8Report;
    expect(report.format).toBe('pocovid-int8');
    expect(report.method).toBe('mse');
    expect(report.reduceRange).toBe(true);
    expect(report.framesKind).toBe('dataset');
    expect(report.calibrationFiles).toHaveLength(6);
    expect(report.checkFiles).toHaveLength(8);
    expect([report.calibrationFrameCount, report.checkFrameCount]).toEqual([6, 8]);
    expect(report.calibrationFiles.filter((f) => report.checkFiles.includes(f))).toEqual([]);
    expect(report.members.map((m) => m.member)).toEqual(['member-0', 'member-1']);
    for (const m of report.members) {
      expect(m.labelAgreement).toBeGreaterThanOrEqual(0);
      expect(m.labelAgreement).toBeLessThanOrEqual(1);
      expect(m.maxProbabilityChange).toBeLessThan(0.2);
      expect(m.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    }

    // predict with the int8 members: the same kind of answer as float, on ONNX Runtime.
    const frame = join(dataset, report.checkFiles[0]!);
    const int8 = await createPipeline(out, { precision: 'int8', guard: false });
    const fp32 = await createPipeline(out, { guard: false });
    expect(int8.precision).toBe('int8');
    expect(int8.runtimes).toEqual(['ort', 'ort']);
    const a = await int8.predictImage(frame);
    const b = await fp32.predictImage(frame);
    for (const c of TINY_CLASSES) expect(Math.abs(a.probabilities![c]! - b.probabilities![c]!)).toBeLessThan(0.2);
    await int8.dispose();
    await fp32.dispose();
  });

  it('on a trained grayscale_cnn: int8 probabilities within 0.05 of float, and int8.json\'s figures equal to those of both pipelines', async () => {
    // A model trained on the phantom gives confident, varied answers (an untrained one answers
    // about 1/3 everywhere, which any quantisation keeps).
    const trained = join(work, 'trained');
    const phantom = join(work, 'data-trained');
    await writeTinyDataset(phantom, { patientsPerClass: 6, framesPerVideo: 2, seed: 5 });
    await trainFold({ data: phantom, out: join(trained, 'fold-0'), model: 'grayscale_cnn', inputSize: [32, 32], batchSize: 8, epochs: 6, lr: 1e-3, lrDecay: 'none', seed: 2, dropout: 0, augment: false, fold: 0 }, { quiet: true });
    const out = join(work, 'model-trained');
    await cli(['export', '--run', trained, '--out', out, '--no-page', '--format', 'onnx', '--int8', '--calibration', phantom, '--calibration-frames', '8', '--check-frames', '12']);
    const report = JSON.parse(readFileSync(join(out, INT8_REPORT_FILE), 'utf8')) as Int8Report;
    expect(report.checkFiles).toHaveLength(12);
    const int8 = await createPipeline(out, { precision: 'int8', guard: false });
    const fp32 = await createPipeline(out, { guard: false });
    let agree = 0;
    let largest = 0;
    const floatTop: number[] = [];
    const floatLabels = new Set<string>();
    try {
      for (const file of report.checkFiles) {
        const [a, b] = [await fp32.predictImage(join(phantom, file)), await int8.predictImage(join(phantom, file))];
        const p = TRAINED_CLASSES.map((c) => a.probabilities![c]!);
        const q = TRAINED_CLASSES.map((c) => b.probabilities![c]!);
        if (p.indexOf(Math.max(...p)) === q.indexOf(Math.max(...q))) agree++;
        p.forEach((v, k) => (largest = Math.max(largest, Math.abs(v - q[k]!))));
        floatTop.push(Math.max(...p));
        floatLabels.add(TRAINED_CLASSES[p.indexOf(Math.max(...p))]!);
      }
    } finally {
      await int8.dispose();
      await fp32.dispose();
    }
    // The float model is trained: confident on some frames, and not one label for all.
    expect(Math.max(...floatTop)).toBeGreaterThan(0.9);
    expect(floatLabels.size).toBeGreaterThan(1);
    expect(largest).toBeLessThan(0.05);
    const [member] = report.members;
    expect(member!.labelAgreement).toBe(agree / report.checkFiles.length);
    expect(member!.maxProbabilityChange).toBeCloseTo(largest, 5);
  });

  it('skips a frame it cannot read, says which, and goes on', async () => {
    const broken = join(work, 'data-broken');
    await writeTinyDataset(broken, { patientsPerClass: 2, framesPerVideo: 2, seed: 4 });
    const manifest = readFileSync(join(broken, 'manifest.csv'), 'utf8').split('\n');
    const firstFrame = manifest[1]!.split(',')[0]!;
    writeFileSync(join(broken, firstFrame), 'not a png');
    const out = join(work, 'model-broken');
    await saveModelDir(out, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(50)] });
    const warnings: string[] = [];
    const report = await exportModelDirInt8(out, { frames: broken, calibrationFrames: 100, checkFrames: 0, warn: (line) => warnings.push(line) });
    expect(report.skippedFiles.map((s) => s.path)).toEqual([firstFrame]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${join(broken, firstFrame)}: skipped`);
    // Every other frame calibrated; no check asked for.
    expect(report.calibrationFiles).toHaveLength(manifest.filter(Boolean).length - 2);
    expect(report.members[0]!.labelAgreement).toBeNull();
  });

  it('calibrates on a plain folder of images and videos, sampled as predict samples them', async () => {
    const folder = join(work, 'clinic-files');
    mkdirSync(join(folder, 'nested'), { recursive: true });
    await writePng(join(folder, 'a.png'), 40, 30, 1);
    await writeJpeg(join(folder, 'nested', 'b.jpg'), 50, 50, 2);
    writeVideo(folder, 'c.avi', 2); // 2 s at 3 frames per second: 6 frames
    writeFileSync(join(folder, 'notes.txt'), 'not a picture: ignored');
    const out = join(work, 'model-folder');
    await saveModelDir(out, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(70)] });
    const report = await exportModelDirInt8(out, { frames: folder, calibrationFrames: 100, checkFrames: 0 });
    expect(report.framesKind).toBe('folder');
    expect([...report.calibrationFiles].sort()).toEqual(['a.png', 'c.avi', join('nested', 'b.jpg')]);
    expect(report.calibrationFrameCount).toBe(8);
    await expect(exportModelDirInt8(out, { frames: join(folder, 'nested', 'b.jpg') })).rejects.toThrow('b.jpg: not a folder');
    const empty = join(work, 'empty-folder');
    mkdirSync(empty);
    await expect(exportModelDirInt8(out, { frames: empty })).rejects.toThrow(`${empty}: has no images or videos (and no dataset.json)`);
  });

  it('needs --calibration and --format onnx', async () => {
    const out = join(work, 'model-refused');
    const noData = await cli(['export', '--run', run, '--out', out, '--format', 'onnx', '--int8']);
    expect(noData.err).toBe('pocovid: --int8 needs --calibration <dir>: frames of the kind the model will see set the int8 ranges');
    expect(process.exitCode).not.toBe(0);
    process.exitCode = 0;
    const noOnnx = await cli(['export', '--run', run, '--out', out, '--int8', '--calibration', dataset]);
    expect(noOnnx.err).toBe('pocovid: --int8 needs --format onnx');
    expect(process.exitCode).not.toBe(0);
    process.exitCode = 0;
    const badData = await cli(['export', '--run', run, '--out', out, '--format', 'onnx', '--int8', '--calibration', join(work, 'no-such-data')]);
    expect(badData.err).toBe(`pocovid: ${join(work, 'no-such-data')}: not a folder: give a dataset folder (pocovid data build) or a folder of images and videos`);
    process.exitCode = 0;
    const oldOpset = await cli(['export', '--run', run, '--out', out, '--format', 'onnx', '--opset', '12', '--int8', '--calibration', dataset]);
    expect(oldOpset.err).toBe('pocovid: --int8 needs --opset 13 or newer (per-channel DequantizeLinear), got 12');
    expect(existsSync(out)).toBe(false); // each refused before anything was written
  });
});

describe('--precision int8', () => {
  it('refuses a folder without int8 members, a stale int8 file, and TF.js', async () => {
    const plain = join(work, 'model-plain');
    await saveModelDir(plain, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(60)] });
    await expect(createPipeline(plain, { precision: 'int8' })).rejects.toThrow(
      `${join(plain, INT8_REPORT_FILE)}: missing: --precision int8 needs the int8 members of a model folder; make it with: pocovid export`,
    );
    await expect(createPipeline(plain, { precision: 'int8', runtime: 'tfjs' })).rejects.toThrow('--precision int8 runs on ONNX Runtime only');

    await exportModelDirInt8(plain, { frames: dataset, calibrationFrames: 4, checkFrames: 0 });
    // A damaged int8 file (one byte flipped) is refused by its digest in int8.json, not run.
    const int8File = join(plain, 'member-0', INT8_MEMBER_FILE);
    const intact = readFileSync(int8File);
    const damaged = Buffer.from(intact);
    damaged[damaged.length - 20]! ^= 0xff;
    writeFileSync(int8File, damaged);
    await expect(createPipeline(plain, { precision: 'int8' })).rejects.toThrow(new RegExp(`^${int8File}: damaged: its sha256 is [0-9a-f]{12}… but ${join(plain, INT8_REPORT_FILE)} records`));
    writeFileSync(int8File, intact.subarray(0, 100));
    await expect(createPipeline(plain, { precision: 'int8' })).rejects.toThrow(`${int8File}: damaged (truncated): 100 bytes, but`);
    writeFileSync(int8File, intact);
    const restored = await createPipeline(plain, { precision: 'int8' });
    expect(restored.precision).toBe('int8');
    await restored.dispose();
    // The member is replaced by other weights after its int8 file was made.
    await saveModelDir(plain, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(61)] });
    await expect(createPipeline(plain, { precision: 'int8' })).rejects.toThrow(
      `${join(plain, 'member-0', INT8_MEMBER_FILE)}: stale: made from other weights than ${join(plain, 'member-0')} now holds`,
    );
  });
});
