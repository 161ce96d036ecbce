// Fault injection on training runs: `pocovid cv` killed with kill -9 (a real child process) and run
// again; checkpoints with random bytes, NaN or a cut state.json; a run that diverges; a fold's
// predictions.csv or result.json cut short. Each case checks the error (the file named, what to
// do) AND that what was written before (finished folds, the pooled predictions, the ensemble)
// survives as it was.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { readPredictionsCsv } from '../../src/eval/csv.js';
import { evaluateRun } from '../../src/eval/report.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/models/weights/safetensors.js';
import { runCrossValidation } from '../../src/train/cv.js';
import { trainFold } from '../../src/train/train_fold.js';
import type { ManifestRow } from '../../src/data/types.js';
import { startCli } from '../helpers/cli_process.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

let root: string;
let data: string;
let rows: ManifestRow[];
let cache: string;

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-fault-train-'));
  cache = join(root, 'cache');
  process.env['POCOVID_CACHE'] = cache;
  data = join(root, 'data');
  rows = await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 2, folds: 3, size: 32 });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const options = (out: string, epochs: number) => ({ data, out, model: 'grayscale_cnn', inputSize: [32, 32] as [number, number], batchSize: 8, seed: 3, dropout: 0, epochs });

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const historyEpochs = (fold: string): number[] =>
  readFileSync(join(fold, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { epoch: number }).epoch);

interface CheckpointState {
  epoch: number;
  files: Record<'last' | 'optimizer' | 'best', { name: string; sha256: string; bytes: number }>;
}
const stateOf = (dir: string): CheckpointState => JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8')) as CheckpointState;

describe('cv killed with kill -9', () => {
  const run = () => join(root, 'cv');

  it('resumes where the checkpoint stands and pools every test frame exactly once', async () => {
    const cli = startCli(['cv', '--data', data, '--model', 'grayscale_cnn', '--input-size', '32', '--batch-size', '8', '--epochs', '3', '--seed', '3', '--dropout', '0', '--out', run(), '--quiet'], { cache });
    // Killed once the first fold has a checkpoint: part of the way through that fold.
    const state = join(run(), 'fold-0', 'checkpoint', 'state.json');
    for (let i = 0; i < 1200 && !existsSync(state); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(state)).toBe(true);
    cli.child.kill('SIGKILL');
    expect(await cli.exited).toBe('SIGKILL');
    expect(existsSync(join(run(), 'predictions.csv'))).toBe(false);

    const result = await runCrossValidation(options(run(), 3), true);
    expect(result.folds.map((f) => f.fold)).toEqual([0, 1, 2]);
    const pooled = readPredictionsCsv(result.predictions).rows;
    expect(pooled.map((r) => r.path).sort()).toEqual(rows.map((r) => r.path).sort());
    for (const k of [0, 1, 2]) {
      const fold = join(run(), `fold-${k}`);
      expect(historyEpochs(fold)).toEqual([0, 1, 2]);
      // The checkpoint folder holds exactly the generation state.json names.
      const named = Object.values(stateOf(fold).files).map((f) => f.name);
      expect(readdirSync(join(fold, 'checkpoint')).filter((n) => n !== 'state.json').sort()).toEqual([...new Set(named)].sort());
    }
  });

  it('refuses to pool a fold whose predictions.csv was cut at a line end, and keeps the pooled files', async () => {
    const file = join(run(), 'fold-1', 'predictions.csv');
    const intact = readFileSync(file, 'utf8');
    const pooled = sha(join(run(), 'predictions.csv'));
    const ensemble = sha(join(run(), 'ensemble', 'pocovid.json'));
    const lines = intact.trimEnd().split('\n');
    writeFileSync(file, lines.slice(0, -3).join('\n') + '\n');
    const testFrames = rows.filter((r) => r.fold === 1).length;
    await expect(runCrossValidation(options(run(), 3), true)).rejects.toThrow(
      new RegExp(`^${file}: 3 of the ${testFrames} test frames of fold 1 have no prediction \\(.+\\): the file is truncated or incomplete; delete ${run()}/fold-1/result\\.json to train fold 1 again$`),
    );
    expect(sha(join(run(), 'predictions.csv'))).toBe(pooled);
    expect(sha(join(run(), 'ensemble', 'pocovid.json'))).toBe(ensemble);
    // The repair the message names: the fold is written again (from its checkpoint) and pooled.
    rmSync(join(run(), 'fold-1', 'result.json'));
    await runCrossValidation(options(run(), 3), true);
    expect(readPredictionsCsv(file).rows).toHaveLength(testFrames);
  });

  it('evaluate refuses pooled predictions that lost rows', async () => {
    const file = join(run(), 'predictions.csv');
    const intact = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, intact.trimEnd().split('\n').slice(0, -2).join('\n') + '\n');
      await expect(evaluateRun(run(), { plots: false })).rejects.toThrow(new RegExp(`^${file}: 2 of the ${rows.length} frames of folds 0, 1, 2 in .*manifest\\.csv have no prediction`));
    } finally {
      writeFileSync(file, intact);
    }
  });

  it('names a fold summary cut short instead of throwing a bare SyntaxError', async () => {
    const file = join(run(), 'fold-2', 'result.json');
    const intact = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, intact.slice(0, intact.length / 2));
      await expect(runCrossValidation(options(run(), 3), true)).rejects.toThrow(
        new RegExp(`^${file}: not valid JSON \\(.+\\): the file is truncated or damaged \\(the fold summary\\); delete it to train fold 2 again$`),
      );
    } finally {
      writeFileSync(file, intact);
    }
  });
});

describe('a damaged checkpoint', () => {
  /** A fold trained for 2 epochs, its outputs' digests, and its checkpoint state. */
  async function stoppedFold(name: string): Promise<{ out: string; outputs: Record<string, string> }> {
    const out = join(root, name);
    await trainFold({ ...options(out, 2), fold: 0 }, { quiet: true });
    const outputs = Object.fromEntries(['predictions.csv', 'model/member-0/weights.bin', 'history.jsonl'].map((f) => [f, sha(join(out, f))]));
    return { out, outputs };
  }
  const unchanged = (out: string, outputs: Record<string, string>) => {
    for (const [file, digest] of Object.entries(outputs)) expect(sha(join(out, file)), file).toBe(digest);
  };

  it('with random bytes: the resume stops naming the file, before any weight is restored', async () => {
    const { out, outputs } = await stoppedFold('ckpt-scrambled');
    const last = join(out, 'checkpoint', stateOf(out).files.last.name);
    const bytes = readFileSync(last);
    for (let i = 0; i < 200; i++) bytes[bytes.length - 400 + i]! ^= 0x5a;
    writeFileSync(last, bytes);
    await expect(trainFold({ ...options(out, 3), fold: 0 }, { quiet: true })).rejects.toThrow(
      new RegExp(`^${last}: damaged: its sha256 is [0-9a-f]{12}… but ${out}/checkpoint/state\\.json records [0-9a-f]{12}… \\(the file changed after it was written\\); delete ${out}/checkpoint to train this fold again from its first epoch$`),
    );
    unchanged(out, outputs);
  });

  it('holding NaN with a matching digest: refused, the tensor named', async () => {
    const { out, outputs } = await stoppedFold('ckpt-nan');
    const state = stateOf(out);
    const last = join(out, 'checkpoint', state.files.last.name);
    const contents = decodeSafetensors(new Uint8Array(readFileSync(last)), last);
    const [name, tensor] = [...contents.tensors.entries()][0]!;
    tensor.data[5] = Number.NaN;
    const bytes = encodeSafetensors(contents.tensors, contents.metadata);
    writeFileSync(last, bytes);
    state.files.last = { ...state.files.last, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
    writeFileSync(join(out, 'checkpoint', 'state.json'), JSON.stringify(state));
    await expect(trainFold({ ...options(out, 3), fold: 0 }, { quiet: true })).rejects.toThrow(`${last}: damaged: tensor "${name}" holds NaN at index 5; delete ${out}/checkpoint to train this fold again`);
    unchanged(out, outputs);
  });

  it('with state.json cut short: named, not a bare SyntaxError', async () => {
    const { out, outputs } = await stoppedFold('ckpt-state');
    const file = join(out, 'checkpoint', 'state.json');
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 30));
    await expect(trainFold({ ...options(out, 3), fold: 0 }, { quiet: true })).rejects.toThrow(
      new RegExp(`^${file}: not valid JSON \\(.+\\): the file is truncated or damaged \\(the checkpoint state\\); delete ${out}/checkpoint to train this fold again`),
    );
    unchanged(out, outputs);
  });

  it('history.jsonl cut in its last line by a kill: the resume drops that line and goes on', async () => {
    const { out } = await stoppedFold('ckpt-history');
    writeFileSync(join(out, 'history.jsonl'), readFileSync(join(out, 'history.jsonl'), 'utf8') + '{"epoch":2,"loss":0.');
    await trainFold({ ...options(out, 3), fold: 0 }, { quiet: true });
    expect(historyEpochs(out)).toEqual([0, 1, 2]);
  });
});

describe('a run that diverges', () => {
  it('stops at the first non-finite loss and writes no checkpoint of it', async () => {
    const out = join(root, 'diverged');
    await expect(trainFold({ ...options(out, 3), fold: 0, lr: 1e30, lrDecay: 'none' }, { quiet: true })).rejects.toThrow(
      /^fold 0, epoch \d: the (training|validation) loss is (NaN|Infinity): the weights diverged; train again with a lower --lr \(the last good checkpoint is in .*checkpoint\)$/,
    );
    // Whatever was saved before the NaN is finite (its resume check would say otherwise).
    if (existsSync(join(out, 'checkpoint', 'state.json'))) {
      const state = stateOf(out);
      const last = join(out, 'checkpoint', state.files.last.name);
      const contents = decodeSafetensors(new Uint8Array(readFileSync(last)), last);
      for (const tensor of contents.tensors.values()) expect(tensor.data.every(Number.isFinite)).toBe(true);
    }
    expect(existsSync(join(out, 'predictions.csv'))).toBe(false);
  });
});
