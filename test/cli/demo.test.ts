// `pocovid demo` as a user runs it (bin/pocovid.js in a child process, on dist/), shortened to one
// epoch: the demo's steps are the library's (phantom, build, train, explain, evaluate, export), so
// this checks that the command chains them, marks everything synthetic, and leaves a model that
// `pocovid predict` can use.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataset } from '../../src/data/dataset.js';
import { runCli } from '../helpers/cli_process.js';

let root: string;
let cache: string;
const path = (...parts: string[]) => join(root, ...parts);
const json = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;
const lines = (file: string): string[] => readFileSync(file, 'utf8').trim().split('\n');

async function pocovid(...args: string[]): Promise<{ output: string; stdout: string }> {
  const { code, output, stdout } = await runCli(args, { cache, cwd: root });
  expect(code, `pocovid ${args.join(' ')}:\n${output}`).toBe(0);
  return { output, stdout };
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'pocovid-cli-demo-'));
  cache = path('cache');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('pocovid demo through bin/pocovid.js (one epoch)', () => {
  // The whole demo in a child process: about a minute alone on 2 cores, minutes beside other test files.
  it('writes the phantom, dataset, run, report, explanations and the exported model with its page, all marked synthetic', async () => {
    const { output } = await pocovid('demo', '--out', 'demo', '--epochs', '1', '--seed', '3', '--quiet');
    expect(output).toMatch(/^demo finished in \d+ s \(SYNTHETIC phantom data\)$/m);
    const summary = json<Record<string, unknown>>(path('demo', 'demo.json'));
    expect(summary).toMatchObject({ synthetic: true, seed: 3, run: path('demo', 'run'), model: path('demo', 'model') });
    expect(json<{ synthetic: boolean; seed: number }>(path('demo', 'phantom-synthetic', 'phantom.json'))).toMatchObject({ synthetic: true, seed: 3 });
    expect(json<{ epochs: number; seed: number; model: string }>(path('demo', 'run', 'config.json'))).toMatchObject({ epochs: 1, seed: 3, model: 'grayscale_cnn' });
    expect(lines(path('demo', 'run', 'history.jsonl'))).toHaveLength(1);
    expect(readFileSync(path('demo', 'run', 'report.md'), 'utf8')).toContain('SYNTHETIC');
    expect(readFileSync(path('demo', 'run', 'report.html'), 'utf8')).toContain('explain/index.html');
    expect(existsSync(path('demo', 'run', 'explain', 'index.html'))).toBe(true);
    expect(existsSync(path('demo', 'model', 'index.html'))).toBe(true);
    // The exported model predicts through the CLI on a frame of the demo's own dataset.
    const frame = openDataset(path('demo', 'dataset-synthetic')).rows[0]!;
    // --json on stdout is JSON alone; the summary line goes to stderr.
    const predicted = await pocovid('predict', '--model', 'demo/model', join('demo', 'dataset-synthetic', frame.path), '--json');
    const results = JSON.parse(predicted.stdout) as { label: string; probabilities: Record<string, number> }[];
    expect(results).toHaveLength(1);
    expect(results[0]!.label).toMatch(/^(covid|pneumonia|regular)$/);
    expect(Object.values(results[0]!.probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(predicted.output).toMatch(/^1 of 1 file diagnosed/m);
  }, 360_000);
});
