import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { register } from '../../src/cli/evaluate.js';
import { writePredictionsCsv } from '../../src/eval/csv.js';
import { evaluateRun } from '../../src/eval/report.js';
import { syntheticPredictions } from './synthetic.js';

const classes = ['covid', 'pneumonia', 'regular'];
const root = mkdtempSync(join(tmpdir(), 'pocovid-report-'));
const run = join(root, 'run');
afterAll(() => rmSync(root, { recursive: true, force: true }));

beforeAll(() => {
  const rows = syntheticPredictions({ classes, videos: 30, framesPerVideo: 5, folds: 3, signal: 1.2, seed: 7 });
  writePredictionsCsv(join(run, 'predictions.csv'), rows, classes);
  writeFileSync(join(run, 'config.json'), JSON.stringify({ model: 'tiny_cnn', classes }));
  mkdirSync(join(run, 'fold-0'));
  writeFileSync(join(run, 'fold-0', 'history.jsonl'), [1, 2, 3].map((epoch) => JSON.stringify({ epoch, loss: 1 / epoch, accuracy: 0.5, valLoss: 1, valAccuracy: 0.5, valBalancedAccuracy: 0.5, lr: 1e-4 })).join('\n') + '\n');
});

async function cli(...args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  register(program);
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await program.parseAsync(['node', 'pocovid', 'evaluate', ...args]);
    return log.mock.calls.map((c) => c.join(' ')).join('\n');
  } finally {
    log.mockRestore();
  }
}

describe('pocovid evaluate', () => {
  it('writes report.json with the issue shape, report.md with tables, and SVG+PNG plots', async () => {
    const out = await cli('--run', run);
    expect(out).toMatch(/frame: accuracy 0\.\d{3}, balanced 0\.\d{3}/);
    const json = JSON.parse(readFileSync(join(run, 'report.json'), 'utf8'));
    for (const m of [json.frame, json.video, ...json.folds]) {
      for (const key of ['accuracy', 'balancedAccuracy', 'mcc', 'perClass', 'confusionMatrix', 'auc']) expect(m).toHaveProperty(key);
      for (const c of classes) expect(Object.keys(m.perClass[c])).toEqual(['precision', 'recall', 'specificity', 'f1', 'support']);
      expect(Object.keys(m.auc)).toEqual([...classes, 'micro', 'macro']);
    }
    expect(json.folds).toHaveLength(3);
    expect(json.frame.n).toBe(150);
    expect(json.video.n).toBe(30);
    expect(json.foldSummary.balancedAccuracy).toHaveProperty('std');
    expect(json).not.toHaveProperty('curves');

    const md = readFileSync(join(run, 'report.md'), 'utf8');
    expect(md).toContain('# Evaluation of run (tiny_cnn)');
    expect(md).toMatch(/\| covid \| \d\.\d{3} ± \d\.\d{3} \|/);
    expect(md).toContain('### Confusion matrix (rows: true class)');
    expect(md).toContain('![frame ROC curves](plots/frame-roc.png)');
    expect(md).toContain('## Video level (mean probability)');
    expect(md).toContain('](plots/history-fold-0.png)');
    for (const name of ['frame-confusion-counts', 'frame-confusion-normalized', 'frame-roc', 'frame-pr', 'video-roc', 'video-pr', 'folds-balanced-accuracy', 'history-fold-0']) {
      expect(existsSync(join(run, 'plots', `${name}.svg`)), name).toBe(true);
      expect(existsSync(join(run, 'plots', `${name}.png`)), name).toBe(true);
    }
  });

  it('evaluates a --classes reduction into <run>/tasks/<task> without touching the main report', async () => {
    const before = readFileSync(join(run, 'report.json'), 'utf8');
    await cli('--run', run, '--classes', 'covid,pneumonia', '--video-agg', 'vote', '--no-plots');
    expect(readFileSync(join(run, 'report.json'), 'utf8')).toBe(before);
    const json = JSON.parse(readFileSync(join(run, 'tasks', 'covid-vs-pneumonia', 'report.json'), 'utf8'));
    expect(json.classes).toEqual(['covid', 'pneumonia']);
    expect(json.frame.n).toBe(100);
    expect(json.task.videoAggregation).toBe('vote');
    expect(existsSync(join(run, 'tasks', 'covid-vs-pneumonia', 'plots'))).toBe(false);
  });

  it('evaluates healthy vs disease', async () => {
    const { report, outDir } = await evaluateRun(run, { binary: 'healthy-vs-disease', plots: false });
    expect(outDir).toBe(join(run, 'tasks', 'healthy-vs-disease'));
    expect(report.classes).toEqual(['healthy', 'disease']);
    expect(report.frame.perClass.healthy!.support).toBe(50);
    expect(report.frame.perClass.disease!.support).toBe(100);
  });

  it('names the file and the problem when the run is unusable', async () => {
    await expect(evaluateRun(join(root, 'nowhere'))).rejects.toThrow(/nowhere[/\\]predictions\.csv: not found/);
    const other = join(root, 'mismatch');
    mkdirSync(other);
    writeFileSync(join(other, 'predictions.csv'), readFileSync(join(run, 'predictions.csv')));
    writeFileSync(join(other, 'config.json'), JSON.stringify({ classes: ['regular', 'covid', 'pneumonia'] }));
    await expect(evaluateRun(other)).rejects.toThrow(/do not match the classes of config\.json/);
    await expect(evaluateRun(run, { classes: ['covid', 'viral'], plots: false })).rejects.toThrow(/unknown class "viral"/);
    await expect(cli('--run', run, '--video-agg', 'median')).rejects.toThrow(/Allowed choices are mean, vote, top3, contiguous/);
  });
});
