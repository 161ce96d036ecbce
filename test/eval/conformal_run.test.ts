// Prediction sets through a real (tiny) cross-validation: each fold calibrated on its own
// validation split and carrying it in its model folder, the ensemble on the out-of-fold
// predictions, evaluate's coverage figures equal to a hand count, and a refit's calibration added
// to a finished model folder.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { readPredictionsCsv } from '../../src/eval/csv.js';
import { calibrateFromRows } from '../../src/eval/conformal_rows.js';
import { calibrateFromPredictionsCsv } from '../../src/eval/conformal_io.js';
import { conformalThreshold, scoreRule, summariseSets } from '../../src/eval/conformal.js';
import { evaluateRun } from '../../src/eval/report.js';
import { loadModel, readModelMeta, setModelConformal } from '../../src/infer/model_dir.js';
import { runCrossValidation } from '../../src/train/cv.js';
import { trainFold } from '../../src/train/train_fold.js';
import type { ManifestRow } from '../../src/data/types.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

let root: string;
let data: string;
let rows: ManifestRow[];
let run: string;
const classes = ['covid', 'pneumonia', 'regular'];

beforeAll(async () => {
  await initEngine();
  root = mkdtempSync(join(tmpdir(), 'pocovid-conformal-'));
  process.env.POCOVID_CACHE = join(root, 'cache');
  data = join(root, 'data');
  rows = await writeTinyDataset(data, { patientsPerClass: 9, framesPerVideo: 3, folds: 3, size: 40 });
  run = join(root, 'cv');
  await runCrossValidation(
    { data, out: run, model: 'grayscale_cnn', inputSize: [32, 32], batchSize: 8, seed: 3, dropout: 0, epochs: 2, lr: 1e-3, coverage: 0.8, conformal: 'aps' },
    true,
  );
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('conformal calibration in training', () => {
  it('writes each fold\'s validation predictions and calibrates its model folder on exactly them', () => {
    for (const fold of [0, 1, 2]) {
      const dir = join(run, `fold-${fold}`);
      const validation = readPredictionsCsv(join(dir, 'calibration_predictions.csv'));
      expect(readModelMeta(join(dir, 'model')).conformal!.calibratedOn).toBe('validation');
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { split: { validationPatients: string[]; validation: number } };
      expect(validation.rows).toHaveLength(config.split.validation);
      expect(new Set(validation.rows.map((r) => r.patient))).toEqual(new Set(config.split.validationPatients));
      // None of them is a test frame of the fold.
      const test = new Set(rows.filter((r) => r.fold === fold).map((r) => r.path));
      for (const r of validation.rows) expect(test.has(r.path)).toBe(false);

      const conformal = readModelMeta(join(dir, 'model')).conformal!;
      expect(conformal.calibratedOn).toBe('validation');
      expect(conformal.coverage).toBe(0.8);
      expect(conformal.classes).toEqual(classes);
      const expected = calibrateFromRows(validation.rows, validation.classes, { calibratedOn: 'validation', coverage: 0.8 });
      expect(conformal.levels).toEqual(expected.levels);
      expect(conformal.levels.frame!.n).toBe(validation.rows.length);
      expect(conformal.levels.video!.n).toBe(new Set(validation.rows.map((r) => r.source)).size);
      expect(conformal.levels.patient!.n).toBe(config.split.validationPatients.length);
    }
  });

  it('calibrates the fold ensemble on the pooled out-of-fold predictions', async () => {
    const ensemble = readModelMeta(join(run, 'ensemble')).conformal!;
    expect(ensemble.calibratedOn).toBe('out-of-fold');
    expect(ensemble.levels.frame!.n).toBe(rows.length);
    expect(ensemble).toEqual(calibrateFromPredictionsCsv(join(run, 'predictions.csv'), { coverage: 0.8 }));
    // The run read as an ensemble carries the same; one fold of it carries that fold's own.
    const whole = await loadModel(run);
    expect(whole.meta.conformal).toEqual(ensemble);
    whole.members.forEach((m) => m.dispose());
    const one = await loadModel(run, 1);
    expect(one.meta.conformal).toEqual(readModelMeta(join(run, 'fold-1', 'model')).conformal);
    one.members.forEach((m) => m.dispose());
  });
});

describe('conformal calibration of a logistic head', () => {
  it('uses the penalty search\'s out-of-fold predictions, since the fit learns from the validation split too', async () => {
    const out = join(root, 'logistic');
    await trainFold(
      { data, out, fold: 1, model: 'mobilenet_v1', head: 'logistic', trainableLayers: 0, inputSize: [32, 32], batchSize: 8, seed: 3, views: 2, runtime: 'tfjs' },
      { quiet: true },
    );
    const calibration = readPredictionsCsv(join(out, 'calibration_predictions.csv')).rows;
    // Every training-fold frame once (view 0 only), no test frame.
    expect(calibration.map((r) => r.path).sort()).toEqual(rows.filter((r) => r.fold !== 1).map((r) => r.path).sort());
    const conformal = readModelMeta(join(out, 'model')).conformal!;
    expect(conformal.calibratedOn).toBe('out-of-fold');
    expect(conformal.levels.frame!.n).toBe(calibration.length);
    expect(conformal.levels).toEqual(calibrateFromRows(calibration, classes, { calibratedOn: 'out-of-fold' }).levels);
  });
});

describe('evaluate with prediction sets and exams', () => {
  it('scores each fold\'s test rows with that fold\'s own threshold and adds the folds up', async () => {
    const { report } = await evaluateRun(run, { plots: false });
    const predictions = readPredictionsCsv(join(run, 'predictions.csv')).rows;
    const frame = report.conformal!.levels.frame!;
    expect(report.conformal!.coverage).toBe(0.8);
    let covered = 0;
    for (const entry of frame.folds) {
      const conformal = readModelMeta(join(run, `fold-${entry.fold}`, 'model')).conformal!;
      const threshold = conformalThreshold(conformal.levels.frame!.scores, 0.8);
      const own = predictions.filter((r) => r.fold === entry.fold).map((r) => ({ probabilities: r.probs, label: classes.indexOf(r.label) }));
      const byHand = summariseSets(own, threshold, scoreRule('aps'));
      expect(entry.n).toBe(own.length);
      expect(entry.coverage).toBe(byHand.coverage);
      expect(entry.meanSetSize).toBe(byHand.meanSetSize);
      expect(entry.setSizes).toEqual(byHand.setSizes);
      expect(entry.calibrationSize).toBe(conformal.levels.frame!.n);
      covered += Math.round(byHand.coverage * own.length);
    }
    expect(frame.pooled.n).toBe(rows.length);
    expect(frame.pooled.coverage).toBeCloseTo(covered / rows.length, 12);
    expect(frame.pooled.setSizes.reduce((a, b) => a + b, 0)).toBe(rows.length);
    expect(report.conformal!.levels.video!.pooled.n).toBe(new Set(rows.map((r) => r.source)).size);
    expect(report.conformal!.levels.patient!.pooled.n).toBe(new Set(rows.map((r) => r.patient)).size);

    // Patients: one exam each, every one scored.
    expect(report.patient!.metrics.n).toBe(new Set(rows.map((r) => r.patient)).size);
    expect(report.patient!.folds).toHaveLength(3);

    const md = readFileSync(join(run, 'report.md'), 'utf8');
    expect(md).toContain('## Patient level (exams)');
    expect(md).toContain('## Prediction sets (split conformal)');
    expect(md).toMatch(/\| \*\*frame\*\* \| \*\*pooled\*\* \|/);
    const json = JSON.parse(readFileSync(join(run, 'report.json'), 'utf8'));
    expect(json.conformal.levels.frame.pooled.n).toBe(rows.length);
  });

  it('takes another coverage from --coverage without recalibrating, and none for a reduced task', async () => {
    const low = await evaluateRun(run, { plots: false, coverage: 0.5, outDir: join(root, 'low') });
    const high = await evaluateRun(run, { plots: false, coverage: 0.95, outDir: join(root, 'high') });
    expect(low.report.conformal!.coverage).toBe(0.5);
    expect(low.report.conformal!.levels.frame!.pooled.meanSetSize).toBeLessThanOrEqual(high.report.conformal!.levels.frame!.pooled.meanSetSize);
    expect(low.report.conformal!.levels.frame!.pooled.coverage).toBeLessThanOrEqual(high.report.conformal!.levels.frame!.pooled.coverage);
    const task = await evaluateRun(run, { plots: false, classes: ['covid', 'regular'] });
    expect(task.report.conformal).toBeUndefined();
  });
});

describe('refit calibration', () => {
  it('puts the out-of-fold calibration into a finished model folder, which still loads', async () => {
    const refit = join(root, 'refit-model');
    cpSync(join(run, 'fold-0', 'model'), refit, { recursive: true });
    const calibration = calibrateFromPredictionsCsv(join(run, 'predictions.csv'), { method: 'raps', coverage: 0.9 });
    expect(calibration.method).toBe('raps');
    await setModelConformal(refit, calibration);
    const loaded = await loadModel(refit);
    expect(loaded.meta.conformal).toEqual(calibration);
    loaded.members.forEach((m) => m.dispose());
    await expect(setModelConformal(refit, { ...calibration, classes: ['a', 'b', 'c'] })).rejects.toThrow(/refit-model[/\\]pocovid\.json: has classes covid, pneumonia, regular/);
    expect(existsSync(join(refit, 'member-0', 'model.json'))).toBe(true);
  });
});
