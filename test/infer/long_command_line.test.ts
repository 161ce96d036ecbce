// `pocovid predict` with a command line of tens of kilobytes (hundreds of file paths), in a process
// of its own: ONNX Runtime's telemetry used to run a recursive regex over /proc/self/cmdline and
// die of a stack overflow (SIGSEGV, exit 139) before the first file (src/onnx/runtime.ts loadOrt).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { writePng } from '../helpers/media_fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-argv-'));
  await saveModelDir(join(work, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(3)] });
  await writePng(join(work, 'scan.png'), 40, 30, 2);
});

describe('a long command line', () => {
  it('predicts 120 files named by 48 kB of paths, in a new process, with ONNX Runtime', () => {
    const deep = join(work, 'd'.repeat(200));
    mkdirSync(deep);
    const files = Array.from({ length: 120 }, (_, i) => {
      const file = join(deep, `${String(i).padStart(3, '0')}_${'f'.repeat(180)}.png`);
      symlinkSync(join(work, 'scan.png'), file);
      return file;
    });
    expect(files.join(' ').length).toBeGreaterThan(48_000);
    const out = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'predict', '--model', join(work, 'model'), '--runtime', 'ort', '--csv', '--no-guard', ...files], {
      cwd: process.cwd(),
      encoding: 'utf8',
      env: { ...process.env, POCOVID_CACHE: join(work, 'cache') },
      timeout: 240_000,
    });
    expect(out.signal).toBeNull();
    expect(out.status).toBe(0);
    const rows = out.stdout.trim().split('\n');
    expect(rows).toHaveLength(121);
    for (const row of rows.slice(1)) expect(row).toMatch(/,image,(covid|pneumonia|regular),/);
    expect(out.stderr).toContain('120 of 120 files diagnosed');
  });
});
