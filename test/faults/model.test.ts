// Fault injection on model folders and what reads them: random bytes written into weights, a
// truncated member, a folder from before digests existed, weights that make NaN, a damaged cached
// ONNX file. Each case checks the error (the file named, no stack trace, no label) AND that what
// was written before (an earlier export) survives intact.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { initEngine, tf } from '../../src/engine/index.js';
import { ModelOutputError } from '../../src/errors.js';
import { exportRun } from '../../src/infer/export.js';
import { probabilityProblem } from '../../src/decision/finite.js';
import { loadModel } from '../../src/model_dir/run.js';
import { loadModelDir, saveModelDir } from '../../src/model_dir/model_dir.js';
import { createPipeline } from '../../src/infer/pipeline.js';
import { createServer } from '../../src/serve/server.js';
import { writePng } from '../helpers/media_fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;
let run: string;
let image: string;

async function cli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.map((x) => (x instanceof Error ? x.stack : String(x))).join(' ')));
  try {
    process.exitCode = 0;
    await main(['node', 'pocovid', ...args]);
    return { out: out.join('\n'), err: err.join('\n'), code: Number(process.exitCode ?? 0) };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

/** Flips every bit of `count` bytes in the middle of a file: same size, other content. */
function scramble(file: string, count = 64): void {
  const bytes = readFileSync(file);
  const at = Math.floor(bytes.length / 2);
  for (let i = 0; i < count; i++) bytes[at + i]! ^= 0xff;
  writeFileSync(file, bytes);
}

async function makeRun(dir: string): Promise<void> {
  for (const k of [0, 1]) {
    await saveModelDir(join(dir, `fold-${k}`, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(50 + k)] });
  }
}

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-fault-model-'));
  process.env['POCOVID_CACHE'] = join(work, 'cache');
  run = join(work, 'run');
  await makeRun(run);
  image = join(work, 'scan.png');
  await writePng(image, 48, 40, 4);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => {
  process.exitCode = 0;
});

describe('random bytes in an exported member', () => {
  it('predict names the damaged file (no stack trace, no label) and serve refuses to start', async () => {
    const exported = join(work, 'export-scrambled');
    await exportRun(run, exported, { page: false });
    const before = await cli(['predict', '--model', exported, image, '--json']);
    expect(before.code).toBe(0);
    scramble(join(exported, 'member-1', 'weights.bin'));
    const { err, out, code } = await cli(['predict', '--model', exported, image]);
    expect(code).toBe(2);
    expect(err).toMatch(new RegExp(`^pocovid: ${exported}/member-1/weights\\.bin: damaged: its sha256 is [0-9a-f]{12}… but ${exported}/pocovid\\.json records [0-9a-f]{12}… \\(the file changed after it was written\\); export the model again`));
    expect(err).not.toMatch(/\n\s+at /);
    expect(out).not.toMatch(/covid|pneumonia|regular/);
    const tmp = join(work, 'tmp-serve');
    mkdirSync(tmp);
    await expect(createServer({ model: exported, tmpDir: tmp })).rejects.toThrow(`${exported}/member-1/weights.bin: damaged`);
    expect(readdirSync(tmp)).toEqual([]); // the refused server left no folder behind
  });

  it('a changed model.json is caught like a weight file', async () => {
    const exported = join(work, 'export-json');
    await exportRun(run, exported, { page: false });
    const file = join(exported, 'member-0', 'model.json');
    // Same length, other meaning: only the digest can tell.
    writeFileSync(file, readFileSync(file, 'utf8').replace('"relu"', '"tanh"'));
    await expect(loadModelDir(exported)).rejects.toThrow(`${file}: damaged: its sha256 is`);
  });
});

describe('a truncated member of a run', () => {
  it('export stops before writing, an earlier export survives, and predict --model <run> names the file', async () => {
    const damagedRun = join(work, 'run-truncated');
    await makeRun(damagedRun);
    const out = join(work, 'export-earlier');
    await exportRun(damagedRun, out, { page: false });
    const expected = await createPipeline(out, { guard: false });
    const answer = await expected.predictImage(image);
    await expected.dispose();

    const weights = join(damagedRun, 'fold-0', 'model', 'member-0', 'weights.bin');
    truncateSync(weights, 1000);
    const message = new RegExp(
      `${weights}: damaged \\(truncated\\): 1000 bytes, but ${damagedRun}/fold-0/model/pocovid\\.json records \\d+; delete ${damagedRun}/fold-0/result\\.json and run cv again`,
    );
    // Export over the earlier export: refused while reading, so nothing of the earlier one is touched.
    await expect(exportRun(damagedRun, out, { page: false })).rejects.toThrow(message);
    const again = await createPipeline(out, { guard: false });
    expect((await again.predictImage(image)).probabilities).toEqual(answer.probabilities);
    await again.dispose();
    const fresh = join(work, 'export-never');
    await expect(exportRun(damagedRun, fresh, { page: false })).rejects.toThrow(message);
    expect(existsSync(fresh)).toBe(false);

    const { err, code } = await cli(['predict', '--model', damagedRun, image]);
    expect(code).toBe(2);
    expect(err).toMatch(message);
    expect(err).not.toMatch(/\n\s+at /);
  });

  it('a folder from before digests loads with a warning, and a truncated weights file is still caught by its size', async () => {
    const old = join(work, 'old-folder');
    await saveModelDir(old, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(7)] });
    const metaFile = join(old, 'pocovid.json');
    const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
    delete meta.files;
    writeFileSync(metaFile, JSON.stringify(meta));
    const warnings: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (warnings.push(String(chunk)), true));
    try {
      const loaded = await loadModelDir(old);
      loaded.members.forEach((m) => m.dispose());
    } finally {
      write.mockRestore();
    }
    expect(warnings.join('')).toContain(`warning: ${metaFile} records no sha256 of its member files`);
    const weights = join(old, 'member-0', 'weights.bin');
    const size = readFileSync(weights).length;
    truncateSync(weights, size - 8);
    await expect(loadModelDir(old)).rejects.toThrow(`${weights}: damaged (truncated): ${size - 8} bytes, but model.json's weights need ${size}`);
    await expect(loadModel(old)).rejects.toThrow(/damaged \(truncated\)/);
  });
});

describe('weights that give NaN', () => {
  async function nanFolder(dir: string): Promise<void> {
    const broken = tinyModel(3);
    const classifier = broken.getLayer('classifier');
    const nan = classifier.getWeights().map((w) => tf.fill(w.shape, Number.NaN));
    classifier.setWeights(nan);
    tf.dispose(nan);
    // Saved as any model is: its digests match, so only the output check can stop it.
    await saveModelDir(dir, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [broken] });
  }

  it('never become a label: predict reports the file as not classified and exits 1', async () => {
    const dir = join(work, 'nan-model');
    await nanFolder(dir);
    const text = await cli(['predict', '--model', dir, image]);
    expect(text.code).toBe(1);
    expect(text.err).toBe(`pocovid: ${image}: model member-0 gave no usable probabilities for frame 0 (output 0 is NaN): its weights are damaged or diverged; no diagnosis was made`);
    expect(text.out).toContain('0 of 1 file diagnosed, 1 failed (unreadable, or the model gave no usable output: see the errors above)');
    expect(text.out).not.toMatch(/confidence/);
    const json = await cli(['predict', '--model', dir, image, '--json', '--runtime', 'tfjs']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toEqual([{ file: image, error: expect.stringContaining('gave no usable probabilities') }]);
    const pipeline = await createPipeline(dir, { runtime: 'ort' });
    await expect(pipeline.predictImage(image)).rejects.toBeInstanceOf(ModelOutputError);
    await pipeline.dispose();
  });

  it('the check refuses NaN, infinities, values outside [0, 1] and rows not summing to 1', () => {
    expect(probabilityProblem([0.2, 0.3, 0.5])).toBeUndefined();
    expect(probabilityProblem([1, 0, 0])).toBeUndefined();
    expect(probabilityProblem([0.2, Number.NaN, 0.8])).toBe('output 1 is NaN');
    expect(probabilityProblem([0, Number.POSITIVE_INFINITY, 0])).toBe('output 1 is +infinite');
    expect(probabilityProblem([-0.5, 0.5, 1])).toBe('output 0 is -0.5, outside [0, 1]');
    expect(probabilityProblem([0.2, 0.2, 0.2])).toMatch(/^outputs sum to 0\.6\d*, not 1$/);
    expect(probabilityProblem([])).toBe('no outputs');
  });
});

describe('the ONNX cache', () => {
  it('exports a damaged cached file again instead of running it', async () => {
    const cacheDir = join(work, 'onnx-cache');
    const first = await createPipeline(run, { runtime: 'ort', onnxCacheDir: cacheDir, guard: false });
    const answer = await first.predictImage(image);
    await first.dispose();
    const cached = readdirSync(cacheDir).filter((n) => n.endsWith('.onnx'));
    expect(cached).toHaveLength(2);
    const file = join(cacheDir, cached[0]!);
    const intact = readFileSync(file);
    scramble(file, 256);
    const second = await createPipeline(run, { runtime: 'ort', onnxCacheDir: cacheDir, guard: false });
    expect((await second.predictImage(image)).probabilities).toEqual(answer.probabilities);
    await second.dispose();
    expect(readFileSync(file).equals(intact)).toBe(true);
  });
});
