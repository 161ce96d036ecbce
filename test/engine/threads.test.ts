// Threads: each case runs in a fresh process (a backend and its threadpool live once per process).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { resolveThreads } from '../../src/engine/index.js';
import { relativeError } from './reference.js';

const run = promisify(execFile);
const probe = fileURLToPath(new URL('./fixtures/engine_probe.ts', import.meta.url));

async function probeProcess(args: string[], env: Record<string, string>): Promise<Record<string, unknown>> {
  // The probe never calls process.exit: a timeout here means idle worker threads kept it alive.
  const { stdout } = await run(process.execPath, ['--import', 'tsx', probe, ...args], {
    env: { ...process.env, ...env }, timeout: 90_000, maxBuffer: 64 * 1024 * 1024,
  });
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`probe printed no result: ${stdout}`);
  return JSON.parse(line) as Record<string, unknown>;
}

describe('resolveThreads', () => {
  it('takes the option first, then POCOVID_THREADS, then every logical core', () => {
    expect(resolveThreads(3, { POCOVID_THREADS: '1' })).toBe(3);
    expect(resolveThreads(undefined, { POCOVID_THREADS: '2' })).toBe(2);
    expect(resolveThreads(undefined, {})).toBeGreaterThanOrEqual(1);
  });

  it('rejects a bad count and names where it came from', () => {
    expect(() => resolveThreads(undefined, { POCOVID_THREADS: 'two' })).toThrow(/POCOVID_THREADS.*"two"/);
    expect(() => resolveThreads(undefined, { POCOVID_THREADS: '0' })).toThrow(/POCOVID_THREADS/);
    expect(() => resolveThreads(1.5)).toThrow(/threads must be an integer/);
  });
});

describe('wasm threads', () => {
  it('a conv gives the same result on 2 threads as on 1, and both processes exit by themselves', async () => {
    const [one, two] = await Promise.all([
      probeProcess(['conv'], { POCOVID_THREADS: '1' }),
      probeProcess(['conv'], { POCOVID_THREADS: '2' }),
    ]);
    expect(one['backend']).toBe('wasm');
    expect(one['threads']).toBe(1);
    expect(two['threads']).toBe(2);
    expect(two['warnings']).toEqual([]);
    expect(relativeError(two['values'] as number[], one['values'] as number[])).toBeLessThanOrEqual(1e-5);
  });

  it('falls back to 1 thread with a warning when the threaded start fails', async () => {
    const result = await probeProcess(['broken-worker'], {});
    expect(result['threads']).toBe(1);
    expect(result['warning']).toMatch(/multi-threaded wasm backend unavailable.*running on 1 thread/);
    expect(result['backend']).toBe('wasm');
    expect(result['sum']).toBe(6);
  });
});
