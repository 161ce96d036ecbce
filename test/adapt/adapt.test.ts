// Adapting a model to a site's files (the page's "Adapt to my data", src/adapt): a small CNN is
// trained on phantom scenes of one probe geometry (site A), then adapted to scenes of another
// (site B). The held-back accuracy must rise; "before" and "after" must be the shipped and the
// adapted model's own forward passes; each mode must move only what it says; the kept record must
// give back the same model and be refused for another; nothing may leak.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adaptableMember, adaptModel, setTrainedWeights, type AdaptFile, type AdaptSettings } from '../../src/adapt/adapt.js';
import { disposeBuiltModel } from '../../src/models/cut.js';
import { labelOfPath } from '../../src/adapt/labels.js';
import { recordFromJson, recordToJson, type AdaptationRecord } from '../../src/adapt/record.js';
import { holdOut } from '../../src/adapt/split.js';
import { PHANTOM_CLASSES, type PhantomSite } from '../../src/data/phantom.js';
import { meanVector } from '../../src/decision/combine.js';
import { initEngine } from '../../src/engine/index.js';
import { conformalScore } from '../../src/eval/conformal.js';
import { layersModelFromFiles, layersModelToFiles, type LayersFiles } from '../../src/model_dir/layers_io.js';
import { resizeRgb } from '../../src/media/resize.js';
import { clipInputs } from '../../src/models/preprocess.js';
import { phantomFrames } from '../helpers/phantom_media.js';
import { tinyCfg, tinyModel } from '../helpers/tiny_model.js';

const SIZE = 48;
const cfg = tinyCfg(SIZE);
const SITE_B: PhantomSite = { gain: 1.7, sectorDegrees: 16, apex: 1.2 };
const settings = (over: Partial<AdaptSettings> = {}): AdaptSettings => ({ mode: 'head', epochs: 40, lr: 3e-3, batchSize: 16, seed: 0, heldOutFraction: 0.3, ...over });

/** `perClass` one-frame phantom images of each class at a site, as the page hands them over. */
function siteFiles(site: PhantomSite | undefined, seed: number, perClass: number): AdaptFile[] {
  return PHANTOM_CLASSES.flatMap((label, k) =>
    Array.from({ length: perClass }, (_, i) => {
      const frame = phantomFrames(label, 96, 1, seed + 100 * k + i, site)[0]!;
      const name = `${label}-${i}.png`;
      return { name, label, group: `file:${name}`, kind: 'image' as const, inputs: clipInputs([{ width: SIZE, height: SIZE, rgb: resizeRgb(frame, 96, 96, SIZE, SIZE) }], cfg) };
    }),
  );
}

/** Probabilities of a flat model on inputs. */
function predict(model: { predict(x: tf.Tensor): tf.Tensor | tf.Tensor[] }, inputs: Float32Array[]): number[][] {
  return tf.tidy(() => {
    const x = tf.stack(inputs.map((v) => tf.tensor3d(v, [SIZE, SIZE, 3])));
    return (model.predict(x) as tf.Tensor).arraySync() as number[][];
  });
}

/** The frames the adaptation held back, in its order (files in hold-out order, frames in file order). */
function heldOutInputs(files: AdaptFile[], s: AdaptSettings): { inputs: Float32Array[]; labels: number[] } {
  const { heldOut } = holdOut(files, s.heldOutFraction, s.seed);
  return { inputs: heldOut.flatMap((f) => files[f]!.inputs), labels: heldOut.flatMap((f) => files[f]!.inputs.map(() => PHANTOM_CLASSES.indexOf(files[f]!.label as never))) };
}

let siteA: LayersFiles[];
let siteB: AdaptFile[];

beforeAll(async () => {
  await initEngine();
  // Site A's model: the small CNN trained whole on site A, then saved with only its classifier
  // trainable (as the default recipe saves a logistic head on a frozen backbone).
  const model = tinyModel(3, { size: SIZE, filters: [16, 32], hidden: false });
  const trained = await adaptModel([await layersModelToFiles(model)], { classes: PHANTOM_CLASSES, cfg }, siteFiles(undefined, 1, 24), settings({ epochs: 60, lr: 1e-2 }));
  expect(trained.result.after.accuracy).toBeGreaterThan(0.8);
  const files = await layersModelToFiles(trained.members[0]!.model);
  for (const layer of (files.modelJson.modelTopology as { config: { layers: { name: string; config: { trainable?: boolean } }[] } }).config.layers) {
    layer.config.trainable = layer.name === 'classifier';
  }
  siteA = [files];
  trained.members.forEach((m) => disposeBuiltModel(m));
  model.dispose();
  siteB = siteFiles(SITE_B, 5000, 12);
}, 120_000);

describe('labelOfPath', () => {
  const classes = ['covid', 'pneumonia', 'regular'];
  it('reads the class folder, the patient folder under it, and the POCUS file-name prefix', () => {
    expect(labelOfPath('export/COVID/clip1.mp4', classes)).toEqual({ label: 'covid', from: 'folder', group: 'file:export/COVID/clip1.mp4' });
    expect(labelOfPath('site/regular/pat-07/zone2/a.png', classes)).toEqual({ label: 'regular', from: 'folder', group: 'patient:pat-07' });
    expect(labelOfPath('Pneu_case3.avi', classes)).toEqual({ label: 'pneumonia', from: 'prefix', group: 'file:Pneu_case3.avi' });
    // The nearest class folder wins over a prefix and over a class-named folder higher up.
    expect(labelOfPath('covid/regular/Pne_x.png', classes)).toMatchObject({ label: 'regular', from: 'folder' });
  });
  it('leaves unlabelled what names no class of the model', () => {
    expect(labelOfPath('scan_001.png', classes)).toEqual({ group: 'file:scan_001.png' });
    expect(labelOfPath('Vir_x.mp4', classes)).toEqual({ group: 'file:Vir_x.mp4' });
  });
});

describe('holdOut', () => {
  const items = ['a', 'b', 'c', 'd', 'e'].flatMap((p) => [{ group: `patient:${p}`, label: 'covid' }, { group: `patient:${p}`, label: 'covid' }]).concat(['f', 'g', 'h'].map((f) => ({ group: `file:${f}`, label: 'regular' })));
  it('holds back whole groups, every class on both sides, the same for the same seed', () => {
    const split = holdOut(items, 0.3, 0);
    expect(split).toEqual(holdOut(items, 0.3, 0));
    const heldGroups = new Set(split.heldOut.map((i) => items[i]!.group));
    for (const i of split.train) expect(heldGroups.has(items[i]!.group)).toBe(false);
    expect([...heldGroups].filter((g) => g.startsWith('patient:'))).toHaveLength(2); // round(0.3 × 5)
    expect([...heldGroups].filter((g) => g.startsWith('file:'))).toHaveLength(1); // at least one
    const seeds = new Set([0, 1, 2, 3, 4, 5].map((seed) => JSON.stringify(holdOut(items, 0.3, seed).heldOut)));
    expect(seeds.size).toBeGreaterThan(1);
  });
  it('refuses a class with a single file or patient, naming it', () => {
    expect(() => holdOut([...items, { group: 'file:z', label: 'pneumonia' }], 0.3, 0)).toThrow('class "pneumonia" has 1 file or patient: adapting needs at least 2 of every class');
    expect(() => holdOut(items, 1, 0)).toThrow(/between 0 and 1/);
  });
});

describe('adaptModel', () => {
  it('head: the held-back accuracy on the new site rises; before and after are the models\' own forward passes', async () => {
    const start = tf.memory().numTensors;
    const s = settings();
    const adapted = await adaptModel(siteA, { classes: PHANTOM_CLASSES, cfg }, siteB, s);
    const { result } = adapted;
    expect(result.heldOutFrames + result.trainFrames).toBe(siteB.length);
    expect(result.heldOutFiles).toHaveLength(12); // 4 of 12 per class
    expect(result.after.accuracy).toBeGreaterThan(result.before.accuracy + 0.1);
    expect(result.after.balancedAccuracy).toBeGreaterThan(result.before.balancedAccuracy + 0.1);
    expect(result.after.confusion.flat().reduce((a, b) => a + b, 0)).toBe(result.heldOutFrames);

    const held = heldOutInputs(siteB, s);
    const shipped = await layersModelFromFiles(siteA[0]!);
    const accuracy = (probs: number[][]): number => probs.filter((p, i) => p.indexOf(Math.max(...p)) === held.labels[i]).length / probs.length;
    expect(result.before.accuracy).toBeCloseTo(accuracy(predict(shipped, held.inputs)), 12);
    expect(result.after.accuracy).toBeCloseTo(accuracy(predict(adapted.members[0]!.model, held.inputs)), 12);

    // Only the classifier moved.
    const moved = shipped.weights.filter((w, i) => {
      const a = w.read().dataSync();
      const b = adapted.members[0]!.model.weights[i]!.read().dataSync();
      return a.some((v, j) => v !== b[j]);
    });
    expect(moved.map((w) => w.originalName)).toEqual(['classifier/kernel', 'classifier/bias']);

    // The sets are recalibrated on the held-back frames, with the adapted model's probabilities.
    const frameLevel = adapted.conformal.levels.frame!;
    expect(adapted.conformal.calibratedOn).toBe('held-out');
    expect(frameLevel.n).toBe(result.heldOutFrames);
    const own = predict(adapted.members[0]!.model, held.inputs).map((p, i) => conformalScore(p, held.labels[i]!, adapted.conformal)).sort((a, b) => a - b);
    own.forEach((score, i) => expect(frameLevel.scores[i]).toBeCloseTo(score, 5));
    expect(result.calibration).toEqual({ frames: result.heldOutFrames, videos: 0, needed: 9, coverage: 0.9 });

    shipped.dispose();
    adapted.members.forEach((m) => disposeBuiltModel(m));
    expect(tf.memory().numTensors).toBe(start);
  }, 120_000);

  it('new-layer: only the inserted layer moves, it starts as the identity, and the accuracy rises', async () => {
    const adapted = await adaptModel(siteA, { classes: PHANTOM_CLASSES, cfg }, siteB, settings({ mode: 'new-layer', lr: 1e-3 }));
    const member = adapted.members[0]!;
    expect(member.addedLayer).toBe('update_1');
    expect(adapted.weights[0]!.weights.map((w) => w.name)).toEqual(['update_1/kernel', 'update_1/bias']);
    const { result } = adapted;
    // "Before" with the identity layer is the shipped model's own accuracy.
    const held = heldOutInputs(siteB, settings());
    const shipped = await layersModelFromFiles(siteA[0]!);
    const correct = predict(shipped, held.inputs).filter((p, i) => p.indexOf(Math.max(...p)) === held.labels[i]).length;
    expect(result.before.accuracy).toBeCloseTo(correct / held.inputs.length, 12);
    expect(result.after.accuracy).toBeGreaterThan(result.before.accuracy + 0.1);
    const classifier = (m: { getLayer(n: string): { getWeights(): tf.Tensor[] } }) => m.getLayer('classifier').getWeights()[0]!.dataSync();
    expect(Array.from(classifier(member.model))).toEqual(Array.from(classifier(shipped)));
    shipped.dispose();
    adapted.members.forEach((m) => disposeBuiltModel(m));
  }, 120_000);

  it('an ensemble scores the mean of its members, as the decision core combines them', async () => {
    const s = settings({ epochs: 2 });
    const twoMembers = [siteA[0]!, await layersModelToFiles(tinyModel(9, { size: SIZE, filters: [16, 32], hidden: false }))];
    const adapted = await adaptModel(twoMembers, { classes: PHANTOM_CLASSES, cfg }, siteB, s);
    const held = heldOutInputs(siteB, s);
    const shipped = await Promise.all(twoMembers.map(layersModelFromFiles));
    const mean = held.inputs.map((_, i) => meanVector(shipped.map((m) => predict(m, held.inputs)[i]!)));
    const correct = mean.filter((p, i) => p.indexOf(Math.max(...p)) === held.labels[i]).length;
    expect(adapted.result.before.accuracy).toBeCloseTo(correct / held.inputs.length, 12);
    shipped.forEach((m) => m.dispose());
    adapted.members.forEach((m) => disposeBuiltModel(m));
  }, 120_000);

  it('refuses a file of a class the model does not have, and a file with no frame, naming the file', async () => {
    const bad = [...siteB.slice(0, 5), { ...siteB[5]!, name: 'odd.png', label: 'viral' }];
    await expect(adaptModel(siteA, { classes: PHANTOM_CLASSES, cfg }, bad, settings())).rejects.toThrow('odd.png: class "viral" is not one of the model\'s (covid, pneumonia, regular)');
    await expect(adaptModel(siteA, { classes: PHANTOM_CLASSES, cfg }, [{ ...siteB[0]!, name: 'blank.png', inputs: [] }], settings())).rejects.toThrow('blank.png: no frame to adapt on');
  });
});

describe('the adaptation record', () => {
  let record: AdaptationRecord;
  let adaptedPredictions: number[][];
  const key = { name: 'tiny', key: 'a'.repeat(64) };

  beforeAll(async () => {
    const adapted = await adaptModel(siteA, { classes: PHANTOM_CLASSES, cfg }, siteB, settings({ mode: 'new-layer', epochs: 5 }));
    record = { format: 'pocovid-adaptation', version: 1, model: key, createdAt: '2026-12-03T00:00:00.000Z', result: adapted.result, conformal: adapted.conformal, members: adapted.weights };
    adaptedPredictions = predict(adapted.members[0]!.model, siteB.slice(0, 6).flatMap((f) => f.inputs));
    adapted.members.forEach((m) => disposeBuiltModel(m));
  }, 120_000);

  it('gives back the same model from its JSON, applied to the shipped files', async () => {
    const text = recordToJson(record);
    expect(text).not.toMatch(/"inputs"|"rgb"/); // weights and figures only, never a frame
    const back = recordFromJson(text, 'site.json', key);
    const member = await adaptableMember(siteA[0]!, cfg.classifier, back.result.settings.mode);
    setTrainedWeights(member, back.members[0]!);
    expect(predict(member.model, siteB.slice(0, 6).flatMap((f) => f.inputs))).toEqual(adaptedPredictions);
    disposeBuiltModel(member);
  });

  it('is refused for another model, when damaged, or when its weights do not fit, with the reason', async () => {
    const text = recordToJson(record);
    expect(() => recordFromJson(text, 'site.json', { name: 'other', key: 'b'.repeat(64) })).toThrow(/^site\.json: made for another model \("tiny", pocovid\.json aaaaaaaaaaaa…\), not this one \("other"/);
    expect(() => recordFromJson(text.slice(0, 200), 'cut.json')).toThrow(/^cut\.json: not JSON/);
    expect(() => recordFromJson(JSON.stringify({ ...JSON.parse(text), format: 'x' }), 'x.json')).toThrow(/^x\.json: not a pocovid adaptation \(format:/);
    const short = JSON.parse(text);
    short.members[0].weights[1].base64 = short.members[0].weights[1].base64.slice(0, 16);
    expect(() => recordFromJson(JSON.stringify(short), 's.json')).toThrow("s.json: member 0's update_1/bias has 3 values for shape 32");
    short.members[0].weights[1].base64 = short.members[0].weights[1].base64.slice(0, 8);
    expect(() => recordFromJson(JSON.stringify(short), 's.json')).toThrow("s.json: member 0's update_1/bias: 6 bytes are not a whole number of float32 values");
    const member = await adaptableMember(siteA[0]!, cfg.classifier, 'head');
    expect(() => setTrainedWeights(member, record.members[0]!)).toThrow(/made with layer "update_1" but the model gives "none"/);
    const nan = { weights: [{ name: 'classifier/kernel', shape: [32, 3], values: new Float32Array(96).fill(Number.NaN) }, { name: 'classifier/bias', shape: [3], values: new Float32Array(3) }] };
    expect(() => setTrainedWeights(member, nan)).toThrow('the adaptation\'s classifier/kernel holds a value that is not finite');
    expect(() => setTrainedWeights(member, { weights: nan.weights.slice(1) })).toThrow('the adaptation does not fit this model: no weights for classifier/kernel');
    disposeBuiltModel(member);
  });
});
