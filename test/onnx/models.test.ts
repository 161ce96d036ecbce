// Every registered model: ONNX Runtime on the exported graph equals TF.js (wasm) on random inputs,
// for the whole model (probabilities) and for the frozen backbone cut (feature maps).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine, tf } from '../../src/engine/index.js';
import { createModel, disposeBuiltModel, modelNames, type BuiltModel, type ModelOptions } from '../../src/models/index.js';
import { decodeModel } from '../../src/onnx/onnx_proto.js';
import { modelToOnnx } from '../../src/onnx/export.js';
import type * as tfl from '@tensorflow/tfjs-layers';
import { createOrtRunnerFromSession, createOrtSession, createTfjsRunner, type ForwardRunner } from '../../src/onnx/runtime.js';
import { createRng } from '../../src/util/rng.js';
import { maxAbs, maxAbsDiff, randomInput, randomizeBatchNorms, spread } from './helpers.js';

/** Small inputs keep the test quick; vgg16's 4×4 average pooling after five poolings needs 128. */
const INPUT_SIZE: Record<string, number> = { vgg16: 128 };
const BATCH = 2;

await initEngine();

async function compareRunners(ort: ForwardRunner, tfjs: ForwardRunner, x: Float32Array): Promise<{ diffs: number[]; scales: number[]; reference: Float32Array[] }> {
  const [fromOrt, fromTfjs] = [await ort.run(x, BATCH), await tfjs.run(x, BATCH)];
  expect(fromOrt.length).toBe(fromTfjs.length);
  return {
    diffs: fromOrt.map((out, i) => maxAbsDiff(out, fromTfjs[i]!)),
    scales: fromTfjs.map(maxAbs),
    reference: fromTfjs,
  };
}

async function ortRunner(model: tfl.LayersModel, bytes: Uint8Array): Promise<ForwardRunner> {
  const session = await createOrtSession(bytes, { threads: 2 });
  const shapeOf = (shape: (number | null)[]) => shape.slice(1) as number[];
  return createOrtRunnerFromSession(session, shapeOf(model.inputs[0]!.shape), model.outputs.map((o) => shapeOf(o.shape)));
}

/** Every registered model as built by default, and the options that change a backbone's graph. */
const VARIANTS: { label: string; name: string; options: Partial<ModelOptions> }[] = [
  ...modelNames().map((name) => ({ label: name, name, options: {} })),
  { label: 'mobilenet_v1 --anti-alias 5', name: 'mobilenet_v1', options: { antiAlias: 5 } },
];

describe.each(VARIANTS)('ONNX export of $label', ({ name, options }) => {
  const size = INPUT_SIZE[name] ?? 64;
  let built: BuiltModel;
  let x: Float32Array;
  const runners: ForwardRunner[] = [];

  beforeAll(() => {
    built = createModel(name, { numClasses: 3, inputSize: [size, size], seed: 7, ...options });
    x = randomInput(createRng(11), BATCH, built.model.inputs[0]!.shape.slice(1) as number[]);
  });

  afterAll(async () => {
    await Promise.all(runners.map((runner) => runner.dispose()));
    disposeBuiltModel(built);
  });

  it('matches TF.js on the whole model within 1e-4 (probabilities)', async () => {
    const batchNorms = randomizeBatchNorms(built.model, x, BATCH, 5);
    const tensorsBefore = tf.memory().numTensors;
    const { bytes } = modelToOnnx(built.model);
    expect(tf.memory().numTensors).toBe(tensorsBefore); // exporting reads weights without leaking
    const ort = await ortRunner(built.model, bytes);
    const tfjs = createTfjsRunner(built.model);
    runners.push(ort);
    expect(ort.runtime).toBe('ort');

    const { diffs, reference } = await compareRunners(ort, tfjs, x);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(reference[0]!.length).toBe(BATCH * 3);
    // The comparison means something only if the probabilities are not all equal.
    expect(spread(reference[0]!)).toBeGreaterThan(0.01);
    expect(diffs[0]).toBeLessThanOrEqual(1e-4);

    // Every BatchNorm that directly follows a conv is folded: none of those leaves a Mul behind.
    const graph = decodeModel(bytes).graph;
    const muls = graph.node.filter((node) => node.opType === 'Mul').length;
    const afterConv = new Set(['Conv2D', 'DepthwiseConv2D']);
    const standaloneBatchNorms = built.model.layers.filter(
      (layer) => layer.getClassName() === 'BatchNormalization' && !afterConv.has(layer.inboundNodes[0]!.inboundLayers[0]!.getClassName()),
    ).length;
    expect(muls).toBe(standaloneBatchNorms);
    // Every BatchNorm got perturbed statistics, so folding had real work to do.
    expect(batchNorms).toBe(built.model.layers.filter((layer) => layer.getClassName() === 'BatchNormalization').length);
  });

  it('matches TF.js on the frozen backbone cut (every output)', async () => {
    // A model trained whole by default (grayscale_cnn) has nothing frozen: cut one with its last
    // conv unit trainable, its BatchNorm statistics perturbed as above.
    let cut = built;
    if (!built.backbone) {
      expect(built.head).toBe(built.model);
      cut = createModel(name, { numClasses: 3, inputSize: [size, size], seed: 7, trainableLayers: 1, ...options });
      expect(randomizeBatchNorms(cut.model, x, BATCH, 5)).toBeGreaterThan(0);
    }
    try {
      const backbone = cut.backbone!;
      expect(backbone).toBeDefined();
      const ort = await ortRunner(backbone, modelToOnnx(backbone).bytes);
      runners.push(ort);
      const tfjs = createTfjsRunner(backbone);
      expect(ort.outputShapes).toEqual(backbone.outputs.map((o) => o.shape.slice(1)));
      const { diffs, scales, reference } = await compareRunners(ort, tfjs, x);
      expect(diffs.length).toBe(backbone.outputs.length);
      // Feature maps are unbounded: compare relative to their magnitude, which must not be nil.
      diffs.forEach((diff, i) => {
        expect(spread(reference[i]!)).toBeGreaterThan(0.01);
        expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scales[i]!));
      });
    } finally {
      if (cut !== built) disposeBuiltModel(cut);
    }
  });
});
