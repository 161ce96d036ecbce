// The job queue end to end with a real Redis server and real worker processes: a phantom cv whose
// folds two `pocovid worker` processes train, one of them killed with SIGKILL in the middle of a
// fold. The fold must be taken over by the other worker (BullMQ's stalled-job check), resumed from
// its checkpoint, and the cv must end with the same weights and predictions.csv as a local run.
// Then: a finished fold is never trained again, a failing job keeps its error, queue status.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { openQueueExecutor, type QueueExecutor } from '../../src/queue/executor.js';
import { queueStatus } from '../../src/queue/status.js';
import { runCrossValidation } from '../../src/train/cv.js';
import { createProgress } from '../../src/train/progress.js';
import { startCli, type CliProcess } from '../helpers/cli_process.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { weightsOfRun } from '../helpers/run_weights.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

let root: string;
let data: string;
let cache: string;
let redis: RedisServer;
let executor: QueueExecutor | undefined;
const workers: CliProcess[] = [];

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-queue-'));
  cache = join(root, 'cache');
  process.env['POCOVID_CACHE'] = cache;
  data = join(root, 'data');
  await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 2, folds: 3, size: 32 });
  redis = await startRedis();
});

afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await executor?.close();
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

// Enough epochs that a fold is still running when its first checkpoint appears; no dropout (TF.js
// draws its masks unseeded), so the same seed gives the same weights wherever a fold runs.
const options = (out: string) => ({
  data,
  out,
  model: 'mobilenet_v1',
  inputSize: [32, 32] as [number, number],
  batchSize: 8,
  seed: 3,
  dropout: 0,
  epochs: 12,
  views: 2,
  runtime: 'tfjs' as const,
});

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes of this test's own (their environment names its cache folder). */
function ownProcesses(): { pid: number; ppid: number }[] {
  const found: { pid: number; ppid: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`POCOVID_CACHE=${cache}`)) continue;
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${entry}/status`, 'latin1'))![1]);
      found.push({ pid: Number(entry), ppid });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

function startWorker(name: string): CliProcess {
  const worker = startCli(['worker', '--queue', redis.url, '--name', name, '--lock-seconds', '2', '--stalled-check-seconds', '1'], { cache });
  workers.push(worker);
  return worker;
}

describe('cv on the queue', () => {
  const local = () => join(root, 'local');
  const queued = () => join(root, 'queued');

  it('two workers, one killed mid-fold: the fold is taken over, resumed from its checkpoint, and the cv equals a local run', async () => {
    await runCrossValidation(options(local()), true);

    const [w1, w2] = [startWorker('w1'), startWorker('w2')];
    await Promise.all([w1.waitFor(/taking jobs/), w2.waitFor(/taking jobs/)]);
    executor = await openQueueExecutor({ url: redis.url, featureDir: join(queued(), 'features'), progress: createProgress(process.stderr, true), pollMs: 200 });
    const cv = runCrossValidation({ ...options(queued()), featureDir: join(queued(), 'features') }, true, { executor });
    cv.catch(() => undefined);

    // The victim: the first worker seen with a fold that has a checkpoint and no result yet.
    let victim: { worker: CliProcess; survivor: CliProcess; fold: number } | undefined;
    for (let i = 0; i < 1200 && !victim; i++) {
      for (const [worker, survivor] of [
        [w1, w2],
        [w2, w1],
      ] as const) {
        const started = [...worker.output().matchAll(/fold \d\/3 of queued\/fold-(\d): started/g)].map((m) => Number(m[1]));
        const fold = started.at(-1);
        if (fold === undefined) continue;
        const dir = join(queued(), `fold-${fold}`);
        if (existsSync(join(dir, 'checkpoint', 'state.json')) && !existsSync(join(dir, 'result.json'))) {
          worker.child.kill('SIGKILL');
          victim = { worker, survivor, fold };
          break;
        }
      }
      if (!victim) await wait(50);
    }
    expect(victim, `no fold was seen mid-way; worker output:\n${w1.output()}\n${w2.output()}`).toBeDefined();
    expect(await victim!.worker.exited).toBe('SIGKILL');
    // The killed worker's job process stops too: only the survivor and its children are left.
    let strays: number[] = [];
    for (let i = 0; i < 100; i++) {
      const survivor = victim!.survivor.child.pid!;
      strays = ownProcesses()
        .filter((p) => p.pid !== survivor && p.ppid !== survivor)
        .map((p) => p.pid);
      if (!strays.length) break;
      await wait(100);
    }
    expect(strays).toEqual([]);

    const result = await cv;
    expect(result.folds.map((f) => f.fold)).toEqual([0, 1, 2]);
    const name = `fold ${victim!.fold + 1}/3 of queued/fold-${victim!.fold}`;
    // Taken over by the other worker, which resumed it from the checkpoint (not from epoch 1).
    expect(victim!.survivor.output()).toMatch(new RegExp(`${name}: started \\(job fold-[0-9a-f]+, taken over: start 2\\)`));
    const resumedAt = new RegExp(`\\[${name}\\] resuming \\S+ at epoch (\\d+)`).exec(victim!.survivor.output());
    expect(resumedAt, victim!.survivor.output()).not.toBeNull();
    expect(Number(resumedAt![1])).toBeGreaterThanOrEqual(2);

    expect(readFileSync(join(queued(), 'predictions.csv'), 'utf8')).toBe(readFileSync(join(local(), 'predictions.csv'), 'utf8'));
    for (const fold of [0, 1, 2]) {
      const [a, b] = [await weightsOfRun(join(local(), `fold-${fold}`)), await weightsOfRun(join(queued(), `fold-${fold}`))];
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      let worst = 0;
      for (const [key, values] of a) values.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b.get(key)![i]!))));
      expect(worst, `fold ${fold}`).toBe(0);
      expect(readFileSync(join(queued(), `fold-${fold}`, 'predictions.csv'), 'utf8')).toBe(readFileSync(join(local(), `fold-${fold}`, 'predictions.csv'), 'utf8'));
    }
    // The frozen features went through the shared folder: files there, and later folds reused them.
    expect(readdirSync(join(queued(), 'features')).length).toBe(1);
    expect(result.folds.some((f) => f.summary.featureEntries.reused > 0)).toBe(true);
  }, 900_000);

  it('never trains a finished fold again, even when its job is submitted once more', async () => {
    const fold = join(queued(), 'fold-0');
    const files = ['result.json', 'predictions.csv', 'model/member-0/weights.bin'];
    const before = files.map((f) => [sha(join(fold, f)), statSync(join(fold, f)).mtimeMs]);
    await executor!.run([{ label: 'fold 1/3', train: { ...options(queued()), fold: 0, out: fold } }]);
    expect(files.map((f) => [sha(join(fold, f)), statSync(join(fold, f)).mtimeMs])).toEqual(before);
    const survivor = workers.find((w) => w.child.exitCode === null && w.child.signalCode === null)!;
    await survivor.waitFor(/fold 1\/3 of queued\/fold-0: was finished already/, 120_000);
  }, 300_000);

  it('keeps the error of a failed job, names it in the submitting command, and queue status lists it', async () => {
    const out = join(root, 'broken', 'fold-0');
    const missing = join(root, 'no-such-dataset');
    await expect(executor!.run([{ label: 'fold 1/3', train: { ...options(join(root, 'broken')), data: missing, fold: 0, out } }])).rejects.toThrow(
      new RegExp(`^1 of 1 job\\(s\\) failed .*\\n  fold 1/3 of broken/fold-0 \\(${out}\\) on w[12]: .*${missing}.*\\nrun the same command again to retry them$`),
    );
    const status = await queueStatus(redis.url);
    expect(status.counts.failed).toBe(1);
    expect(status.failed[0]!.error).toContain(missing);
    expect(status.failed[0]!.out).toBe(out);
    expect(status.counts.done).toBeGreaterThanOrEqual(3);
    expect(status.counts.running + status.counts.waiting).toBe(0);
    expect(status.workers).toHaveLength(1);
  }, 300_000);

  it('a worker stops on SIGTERM (exit 0) and a cv --queue without a Redis server names the address', async () => {
    const survivor = workers.find((w) => w.child.exitCode === null && w.child.signalCode === null)!;
    survivor.child.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
    const cli = startCli(['cv', '--data', data, '--model', 'grayscale_cnn', '--out', join(root, 'nowhere'), '--queue', 'redis://127.0.0.1:1', '--quiet'], { cache });
    expect(await cli.exited).toBe(2);
    expect(cli.output()).toMatch(/^pocovid: --queue redis:\/\/127\.0\.0\.1:1: no Redis server answers there \(ECONNREFUSED\); start one \(redis-server\) or check the address\n$/);
  });
});
