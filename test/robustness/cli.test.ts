// `pocovid robustness` end to end on a real (tiny) pipeline: a synthetic phantom, `data build
// --size 64`, `cv --model grayscale_cnn` for one epoch, then the command through the CLI: the JSON
// shape, the files it writes, native frames re-decoded from the source folder (and the fallback
// when it is gone), an unreadable frame reported while the rest goes on, `bench --robustness`, and
// the error for an unknown perturbation.
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { formatRobustnessBench } from '../../src/bench/robustness.js';
import { main } from '../../src/cli/main.js';
import { readManifest } from '../../src/data/manifest.js';
import type { ManifestRow } from '../../src/data/types.js';
import { readPredictionsCsv } from '../../src/eval/csv.js';
import { PERTURBATION_NAMES, ROBUSTNESS_TARGETS } from '../../src/robustness/index.js';
import { parseFramesCsv } from '../../src/robustness/frames_csv.js';
import { summarisePerturbation } from '../../src/robustness/stats.js';

let root: string;
let source: string;
let data: string;
let run: string;
let rows: ManifestRow[];
const savedCache = process.env['POCOVID_CACHE'];

async function cli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
  const writeErr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (err.push(String(chunk)), true));
  try {
    process.exitCode = 0;
    await main(['node', 'pocovid', ...args]);
    return { out: out.join('\n'), err: err.join('\n'), code: Number(process.exitCode ?? 0) };
  } finally {
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
    writeErr.mockRestore();
  }
}

async function ok(args: string[]): Promise<string> {
  const result = await cli(args);
  if (result.code !== 0) throw new Error(`pocovid ${args.join(' ')} exited ${result.code}: ${result.err}`);
  return result.out;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'pocovid-robustness-cli-'));
  process.env['POCOVID_CACHE'] = join(root, 'cache');
  source = join(root, 'phantom');
  data = join(root, 'dataset');
  run = join(root, 'run');
  await ok(['data', 'phantom', '--out', source, '--per-class', '4', '--images-per-class', '1', '--size', '96', '--frames', '6', '--seed', '0']);
  await ok(['data', 'build', '--source', source, '--out', data, '--size', '64', '--folds', '3', '--seed', '0']);
  await ok(['cv', '--data', data, '--model', 'grayscale_cnn', '--out', run, '--epochs', '1', '--batch-size', '8', '--input-size', '32', '--quiet']);
  rows = readManifest(join(data, 'manifest.csv'));
}, 400_000);

afterEach(() => {
  process.exitCode = 0;
});

afterAll(() => {
  if (savedCache === undefined) delete process.env['POCOVID_CACHE'];
  else process.env['POCOVID_CACHE'] = savedCache;
  rmSync(root, { recursive: true, force: true });
});

describe('pocovid robustness', () => {
  it('measures every perturbation on every fold, prints the JSON of the issue and writes its report, plot and config', async () => {
    const report = JSON.parse(await ok(['robustness', '--run', run, '--json']));
    const tested = readPredictionsCsv(join(run, 'predictions.csv')).rows;
    expect(report.frames).toBe(tested.length);
    expect(report.folds.map((f: { fold: number }) => f.fold)).toEqual([0, 1, 2]);
    expect(report.perturbations.map((p: { name: string }) => p.name)).toEqual(PERTURBATION_NAMES);
    for (const p of report.perturbations) {
      for (const key of ['frameFlipRate', 'videoFlipRate', 'meanTopProbChange', 'medianTopProbChange', 'p95TopProbChange', 'maxTopProbChange', 'meanPixelChange']) {
        expect(typeof p[key], `${p.name}.${key}`).toBe('number');
        expect(p[key]).toBeGreaterThanOrEqual(0);
      }
      expect(p.frameFlipRate).toBeLessThanOrEqual(1);
      expect(p.meanPixelChange, p.name).toBeGreaterThan(0); // every perturbation changed the pixels
      expect(p.maxTopProbChange).toBeGreaterThanOrEqual(p.p95TopProbChange);
      expect(p.p95TopProbChange).toBeGreaterThanOrEqual(p.medianTopProbChange);
      expect(p.target === null).toBe(!ROBUSTNESS_TARGETS.perturbations.includes(p.name));
    }
    const by = Object.fromEntries(report.perturbations.map((p: { name: string }) => [p.name, p]));
    // The resize perturbations started from the native frames of the phantom folder, which give back the stored frames.
    for (const name of ['resize-bilinear', 'resize-area', 'resize-libvips']) expect(by[name].pixelsFrom).toEqual({ native: tested.length, stored: 0 });
    expect(report.native.dir).toBe(source);
    expect(report.native.worstMismatch).toBeLessThan(0.01);
    // H.264 only for videos: the phantom's images are left out of its counts.
    const videoRows = rows.filter((r) => r.kind === 'video');
    expect(by['h264'].frames).toBe(videoRows.length);
    expect(by['h264'].videos).toBe(new Set(videoRows.map((r) => r.source)).size);
    expect(by['noise-1'].videos).toBe(new Set(rows.map((r) => r.source)).size);
    // The clean pass reproduces the run's own predictions: same frames, same preprocessing.
    expect(report.cleanCheck.labelAgreement).toBe(1);
    expect(report.cleanCheck.maxAbsDifference).toBeLessThan(1e-4);
    expect(report.skipped).toEqual([]);

    const out = join(run, 'robustness');
    expect(JSON.parse(readFileSync(join(out, 'robustness.json'), 'utf8'))).toEqual(report);
    const md = readFileSync(join(out, 'robustness.md'), 'utf8');
    for (const name of PERTURBATION_NAMES) expect(md).toContain(`| ${name} | `);
    // frames.csv holds what the figures were counted from: counted again, they are the report's.
    const frames = parseFramesCsv(readFileSync(join(out, 'frames.csv'), 'utf8'), 'frames.csv');
    expect(frames.classes).toEqual(report.classes);
    expect(frames.records.map((r) => r.path).sort()).toEqual(tested.map((r) => r.path).sort());
    for (const p of report.perturbations) {
      const again = summarisePerturbation(p, frames.records, frames.classes, 'mean');
      expect({ ...again, videoSetChanges: p.videoSetChanges, flippedVideosInSet: p.flippedVideosInSet }, p.name).toEqual((({ target: _, ...rest }) => rest)(p));
    }
    expect(existsSync(join(out, 'plots', 'robustness.svg'))).toBe(true);
    expect(readFileSync(join(out, 'plots', 'robustness.png')).subarray(1, 4).toString()).toBe('PNG');
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ kind: 'robustness', run, data, seed: 0, runtime: 'auto', videoAggregation: 'mean', folds: [0, 1, 2], nativeSource: source });
    expect(config.perturbations.map((p: { name: string }) => p.name)).toEqual(PERTURBATION_NAMES);
    expect(config.tools.ffmpeg).toMatch(/\d/);
  });

  it('prints a table by default and is reproducible: the same seed gives the same figures', async () => {
    const args = ['robustness', '--run', run, '--folds', '1', '--perturbations', 'noise-2,gain-5', '--out', join(root, 'table'), '--no-plots', '--quiet'];
    const text = await ok(args);
    expect(text).toMatch(/noise-2 +frames +\d+\.\d% flipped, videos +\d+\.\d% flipped, top-prob change mean 0\.\d{4}/);
    expect(text).toContain(`wrote ${join(root, 'table', 'robustness.md')}`);
    expect(existsSync(join(root, 'table', 'plots'))).toBe(false);
    const first = JSON.parse(readFileSync(join(root, 'table', 'robustness.json'), 'utf8'));
    await ok(args);
    expect(JSON.parse(readFileSync(join(root, 'table', 'robustness.json'), 'utf8')).perturbations).toEqual(first.perturbations);
    await ok([...args.slice(0, -1), '--seed', '9', '--quiet']);
    expect(JSON.parse(readFileSync(join(root, 'table', 'robustness.json'), 'utf8')).perturbations[0].meanTopProbChange).not.toBe(first.perturbations[0].meanTopProbChange);
  });

  it('falls back to a down-up resize of the stored frame when the source folder is gone, and says so; --source finds it again', async () => {
    const moved = join(root, 'phantom-moved');
    renameSync(source, moved);
    try {
      const gone = JSON.parse(await ok(['robustness', '--run', run, '--perturbations', 'resize-area', '--out', join(root, 'gone'), '--json']));
      expect(gone.perturbations[0].pixelsFrom).toEqual({ native: 0, stored: gone.frames });
      expect(gone.native.unavailable).toContain('not found; pass --source <dir>');
      expect(readFileSync(join(root, 'gone', 'robustness.md'), 'utf8')).toContain('went down ×0.75 and back up from the stored frame');
      // In the folder given, one video is another file: its frames fall back to the stored ones, the others are native.
      const videos = rows.filter((r) => r.kind === 'video');
      const swapped = videos[0]!.source;
      const other = videos.find((r) => r.source !== swapped && extname(r.source) === extname(swapped))!.source;
      const altered = join(root, 'phantom-altered');
      cpSync(moved, altered, { recursive: true });
      cpSync(join(moved, other), join(altered, swapped));
      const found = JSON.parse(await ok(['robustness', '--run', run, '--perturbations', 'resize-area', '--source', altered, '--out', join(root, 'found'), '--json']));
      const swappedFrames = readPredictionsCsv(join(run, 'predictions.csv')).rows.filter((r) => r.source === swapped).length;
      expect(found.perturbations[0].pixelsFrom).toEqual({ native: found.frames - swappedFrames, stored: swappedFrames });
      expect(found.native.fallbacks).toEqual([{ source: swapped, reason: expect.stringMatching(/re-decoded frames differ from the stored ones by up to \d+\.\d\d grey levels/) }]);
      expect(readFileSync(join(root, 'found', 'robustness.md'), 'utf8')).toContain('1 source(s) fell back to the stored frame');
      const wrong = await cli(['robustness', '--run', run, '--source', join(root, 'nowhere'), '--out', join(root, 'wrong')]);
      expect([wrong.code, wrong.err]).toEqual([2, `pocovid: ${join(root, 'nowhere')}: not a POCUS source folder (no pocus_videos/ or pocus_images/)`]);
    } finally {
      renameSync(moved, source);
    }
  });

  it('reports a source whose frame cannot be read and measures the rest', async () => {
    const copy = join(root, 'dataset-copy');
    cpSync(data, copy, { recursive: true });
    const broken = rows.find((r) => r.fold === 0 && r.kind === 'video')!;
    writeFileSync(join(copy, broken.path), 'not a png');
    const result = await cli(['robustness', '--run', run, '--data', copy, '--folds', '0', '--perturbations', 'noise-1', '--out', join(root, 'broken'), '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.out);
    expect(report.skipped).toEqual([{ source: broken.source, reason: expect.stringContaining(`${join(copy, broken.path)}: not a readable image`) }]);
    expect(result.err).toContain(`skipped ${broken.source}: ${join(copy, broken.path)}`);
    const fold0 = readPredictionsCsv(join(run, 'fold-0', 'predictions.csv')).rows;
    expect(report.frames).toBe(fold0.filter((r) => r.source !== broken.source).length);
  });

  it('refuses an unknown perturbation, naming the valid ones', async () => {
    const result = await cli(['robustness', '--run', run, '--perturbations', 'noise-1,blur']);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`pocovid: unknown perturbation "blur"; valid: ${PERTURBATION_NAMES.join(', ')}`);
  });
});

describe('pocovid bench --robustness', () => {
  it('measures the tracked perturbations of a run against the issue\'s targets, without writing anything', async () => {
    const written = join(run, 'robustness', 'robustness.json');
    const before = existsSync(written) ? readFileSync(written, 'utf8') : null;
    const report = JSON.parse(await ok(['bench', '--robustness', run, '--runtimes', 'tfjs', '--json']));
    expect(report.perturbations.map((p: { name: string }) => p.name)).toEqual(ROBUSTNESS_TARGETS.perturbations);
    expect(report.folds.map((f: { runtime: string }) => f.runtime)).toEqual(['tfjs', 'tfjs', 'tfjs']);
    expect(existsSync(written) ? readFileSync(written, 'utf8') : null).toBe(before);
    const text = formatRobustnessBench(report);
    expect(text).toContain('targets (issue 15): frame flips ≤ 1.0%, video flips none, mean top-probability change < 0.01');
    // The folds' models carry calibrations, so the video sets are counted (a number, not '–').
    for (const p of report.perturbations as { videoSetChanges: number | null; flippedVideosInSet: number | null; videoFlips: number }[]) {
      expect(Number.isInteger(p.videoSetChanges)).toBe(true);
      expect(p.flippedVideosInSet).toBeLessThanOrEqual(p.videoFlips);
    }
    for (const name of ROBUSTNESS_TARGETS.perturbations) expect(text).toMatch(new RegExp(`\\| ${name} \\| \\d+\\.\\d% \\| \\d+\\.\\d% \\| \\d+ \\| 0\\.\\d{4} \\| .* \\| (met|MISSED .*) \\|`));
    const brittle = { ...report, perturbations: [{ ...report.perturbations[0], frameFlipRate: 0.07, target: { met: false, missed: ['frame flips 7.0% > 1.0%'] } }] };
    expect(formatRobustnessBench(brittle)).toMatch(/\| noise-1 \| 7\.0% \| .* \| MISSED \(frame flips 7\.0% > 1\.0%\) \|/);
  });
});
