// Training options checked to take effect through a real fold (trainFold on a tiny phantom
// dataset), not only to parse: --init starts from the given run's weights, --weights from the
// given file, early stopping ends the run before its epoch count when the validation score stops
// improving, ReduceLROnPlateau lowers the rate in history.jsonl after a plateau of the validation
// loss, and class weights change the loss the trainer minimises. Runs that must keep their start
// use a learning rate of 1e-9 (Adam moves each weight by about that much a step), so their saved
// kernels are their starting kernels to well within 1e-6.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';
import { decodeSafetensors } from '../../src/models/weights/safetensors.js';
import { saveModelWeights } from '../../src/models/weights/load.js';
import { trainFold } from '../../src/train/train_fold.js';
import type { TrainConfigInput } from '../../src/train/config.js';
import type { EpochLog } from '../../src/train/handlers.js';
import { tempDir } from '../data/helpers.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';

let root: string;
let cleanup: () => void;
let data: string;

beforeAll(async () => {
  await initEngine();
  ({ dir: root, cleanup } = tempDir('options-effect'));
  data = join(root, 'data');
  await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 2, folds: 3, size: 32 });
});

afterAll(() => cleanup());

const base = (out: string, extra: Partial<TrainConfigInput> = {}): TrainConfigInput => ({
  data,
  out: join(root, out),
  model: 'grayscale_cnn',
  inputSize: [32, 32],
  batchSize: 8,
  seed: 3,
  dropout: 0,
  augment: false,
  fold: 0,
  epochs: 1,
  ...extra,
});
/** Keeps the starting weights: see the file's comment. */
const still = { lr: 1e-9, lrDecay: 'none' } as const;

const writtenConfig = (out: string): Record<string, unknown> => JSON.parse(readFileSync(join(root, out, 'config.json'), 'utf8')) as Record<string, unknown>;
const history = (out: string): EpochLog[] =>
  readFileSync(join(root, out, 'history.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as EpochLog);

/** The kernels (conv and dense) of a run's best checkpoint, by name. */
function kernels(out: string): Map<string, Float32Array> {
  const dir = join(root, out, 'checkpoint');
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { files: { best: { name: string } } };
  const file = join(dir, state.files.best.name);
  const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(file)), file);
  const found = new Map<string, Float32Array>();
  for (const [name, tensor] of tensors) if (name.endsWith('/kernel')) found.set(name, Float32Array.from(tensor.data));
  return found;
}

function largestDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  expect(a.size).toBeGreaterThan(3);
  let worst = 0;
  for (const [name, values] of a) {
    const other = b.get(name)!;
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i]! - other[i]!));
  }
  return worst;
}

describe('training options take effect through a fold', () => {
  it('--init starts from the given run\'s weights, not from the seed\'s random ones', async () => {
    await trainFold(base('trained', { lr: 1e-2 }), { quiet: true });
    await trainFold(base('from-init', { ...still, init: join(root, 'trained', 'model') }), { quiet: true });
    await trainFold(base('from-seed', still), { quiet: true });
    expect(writtenConfig('from-init')['weightsUsed']).toEqual({ kind: 'init-run', path: join(root, 'trained', 'model') });
    expect(largestDifference(kernels('from-init'), kernels('trained'))).toBeLessThan(1e-6);
    // Without --init the same seed starts elsewhere: the earlier run's training moved its weights.
    expect(largestDifference(kernels('from-seed'), kernels('trained'))).toBeGreaterThan(1e-3);
  });

  it('--weights starts from the given file', async () => {
    const source = createModel('grayscale_cnn', { numClasses: 3, inputSize: [32, 32], seed: 11 });
    const file = join(root, 'start.safetensors');
    try {
      await saveModelWeights(source, file);
    } finally {
      disposeBuiltModel(source);
    }
    await trainFold(base('from-file', { ...still, weights: file }), { quiet: true });
    expect(writtenConfig('from-file')['weightsUsed']).toEqual({ kind: 'file', path: file });
    const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(file)), file);
    const inFile = new Map([...tensors].filter(([name]) => name.endsWith('/kernel')).map(([name, t]) => [name, Float32Array.from(t.data)]));
    expect(largestDifference(kernels('from-file'), inFile)).toBeLessThan(1e-6);
    expect(largestDifference(kernels('from-seed'), inFile)).toBeGreaterThan(1e-3);
  });

  it('early stopping ends the run at the first epoch that does not beat the best validation score (patience 1)', async () => {
    const epochs = 8;
    const result = await trainFold(base('early', { lr: 1e-2, epochs, earlyStoppingPatience: 1 }), { quiet: true });
    const logs = history('early');
    // Where patience 1 must stop, from the validation scores the run logged.
    let best = logs[0]!.valBalancedAccuracy;
    let stopAt = -1;
    for (let e = 1; e < logs.length && stopAt < 0; e++) {
      if (logs[e]!.valBalancedAccuracy > best) best = logs[e]!.valBalancedAccuracy;
      else stopAt = e;
    }
    expect(stopAt, 'the validation score rose at every epoch: no early stop to check').toBeGreaterThan(0);
    expect(result.stoppedEarly).toBe(true);
    expect(result.epochsRun).toBe(stopAt + 1);
    expect(result.epochsRun).toBeLessThan(epochs);
    expect(logs.map((l) => l.epoch)).toEqual(Array.from({ length: stopAt + 1 }, (_, e) => e));
  });

  it('ReduceLROnPlateau multiplies the rate by its factor in history.jsonl after each plateau of the validation loss', async () => {
    const lr = 0.02;
    const factor = 0.5;
    await trainFold(base('plateau', { lr, lrDecay: 'none', epochs: 5, plateauPatience: 1, plateauFactor: factor, earlyStoppingPatience: 10 }), { quiet: true });
    const logs = history('plateau');
    expect(logs).toHaveLength(5);
    // Keras' rule on the logged losses: an epoch that does not beat the best by 1e-4 halves the next epoch's rate.
    let bestLoss = Number.POSITIVE_INFINITY;
    let scale = 1;
    const expected: number[] = [];
    for (const log of logs) {
      expected.push(lr * scale);
      if (log.valLoss < bestLoss - 1e-4) bestLoss = log.valLoss;
      else scale *= factor;
    }
    logs.forEach((log, e) => expect(log.lr, `epoch ${e}`).toBeCloseTo(expected[e]!, 10));
    expect(Math.min(...logs.map((l) => l.lr)), 'the validation loss improved at every epoch: no plateau to check').toBeLessThan(lr);
  });

  it('class weights change the loss the trainer minimises (balanced, on an unbalanced training set), nothing else', async () => {
    // Keep every covid patient but only two of each other class: covid frames outnumber the rest.
    const unbalanced = join(root, 'unbalanced');
    const rows = await writeTinyDataset(unbalanced, { patientsPerClass: 6, framesPerVideo: 2, folds: 3, size: 32 });
    const kept = rows.filter((r) => r.label === 'covid' || Number(r.patient.split('-')[1]) < 3);
    const header = 'path,label,source,patient,probe,kind,frame,time,fold';
    writeFileSync(join(unbalanced, 'manifest.csv'), [header, ...kept.map((r) => [r.path, r.label, r.source, r.patient, r.probe, r.kind, r.frame, r.time, r.fold].join(','))].join('\n') + '\n');
    const info = JSON.parse(readFileSync(join(unbalanced, 'dataset.json'), 'utf8')) as Record<string, unknown>;
    delete info['counts'];
    writeFileSync(join(unbalanced, 'dataset.json'), JSON.stringify(info));

    await trainFold({ ...base('weights-none', still), data: unbalanced, classWeights: 'none' }, { quiet: true });
    await trainFold({ ...base('weights-balanced', still), data: unbalanced, classWeights: 'balanced' }, { quiet: true });
    expect(writtenConfig('weights-balanced')['classWeights']).toBe('balanced');
    // The same model (1e-9 steps), batches and frames: only the weighting differs.
    expect(largestDifference(kernels('weights-none'), kernels('weights-balanced'))).toBeLessThan(1e-6);
    expect(history('weights-none')[0]!.accuracy).toBe(history('weights-balanced')[0]!.accuracy);
    const [lossNone, lossBalanced] = [history('weights-none')[0]!.loss, history('weights-balanced')[0]!.loss];
    expect(Math.abs(lossNone - lossBalanced)).toBeGreaterThan(1e-3);
    expect(writtenConfig('weights-none')['split']).toEqual(writtenConfig('weights-balanced')['split']);
  });
});
