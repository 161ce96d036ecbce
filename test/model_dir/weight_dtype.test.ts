// export --weights-dtype: float16 and uint8 weight storage in TF.js's own manifest quantisation.
// The float16 encoder against TF.js's decoder; a phantom model's run exported as float32, float16
// and uint8: sizes, digests, and `predict`'s answers on phantom frames against float32.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PHANTOM_CLASSES } from '../../src/data/phantom.js';
import { initEngine, tf } from '../../src/engine/index.js';
import { exportRun } from '../../src/infer/export.js';
import { createPipeline, type Pipeline } from '../../src/infer/pipeline.js';
import { loadModelDir, saveModelDir } from '../../src/model_dir/model_dir.js';
import { storedWeightDtype, toFloat16Bits, type WeightDtype } from '../../src/model_dir/weight_dtype.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';
import { writePhantomPng } from '../helpers/phantom_media.js';
import { TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;
const frames: string[] = [];
const pipelines: Partial<Record<WeightDtype, Pipeline>> = {};
const folders: Partial<Record<WeightDtype, string>> = {};

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-weights-'));
  // Two folds of a real backbone (MobileNet v1 as the registry builds it, random weights) at a small input, so that
  // the weights dominate the folder as they do for the page's models.
  for (const k of [0, 1]) {
    const built = createModel('mobilenet_v1', { numClasses: 3, inputSize: [64, 64], seed: 30 + k });
    try {
      await saveModelDir(join(work, 'run', `fold-${k}`, 'model'), { name: 'mobilenet', classes: TINY_CLASSES, cfg: built.cfg, members: [built.model] });
    } finally {
      disposeBuiltModel(built);
    }
  }
  for (const dtype of ['float32', 'float16', 'uint8'] as const) {
    folders[dtype] = join(work, dtype);
    await exportRun(join(work, 'run'), folders[dtype]!, { page: false, weightsDtype: dtype });
    pipelines[dtype] = await createPipeline(folders[dtype]!, { runtime: 'ort' });
  }
  for (const [k, label] of PHANTOM_CLASSES.entries()) {
    for (let i = 0; i < 8; i++) frames.push(await writePhantomPng(join(work, `${label}-${i}.png`), label, 96, 100 * k + i));
  }
});

afterAll(async () => {
  for (const p of Object.values(pipelines)) await p?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

const size = (dtype: WeightDtype, rel: string): number => statSync(join(folders[dtype]!, rel)).size;

/** Bytes of every file of a folder (the model folders hold no page here). */
function folderBytes(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((n, e) => n + statSync(join(e.parentPath, e.name)).size, 0);
}

describe('weight storage dtypes', () => {
  it('encodes float16 as TF.js decodes it (nearest, ties to even; subnormals; the range)', () => {
    expect(toFloat16Bits(1)).toBe(0x3c00);
    expect(toFloat16Bits(-2)).toBe(0xc000);
    expect(toFloat16Bits(65504)).toBe(0x7bff);
    expect(toFloat16Bits(2 ** -24)).toBe(1); // the smallest subnormal
    expect(toFloat16Bits(2 ** -26)).toBe(0);
    expect(toFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // a tie: to even
    expect(toFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    const values = new Float32Array(5000);
    for (let i = 0; i < values.length; i++) values[i] = (Math.sin(i * 12.9898) * 43758.5453) % 1 * 10 ** ((i % 9) - 6);
    const bits = Uint16Array.from(values, (v) => toFloat16Bits(v));
    const decoded = tf.io.decodeWeights(bits.buffer, [{ name: 'w', shape: [values.length], dtype: 'float32', quantization: { dtype: 'float16' } }])['w']!;
    const back = decoded.dataSync();
    decoded.dispose();
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      // Normal halves keep 11 significant bits; below 2^-14 the step is 2^-24.
      expect(Math.abs(back[i]! - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25));
    }
  });

  it('stores float16 in half the bytes and uint8 in a quarter, recorded in model.json and covered by the digests', () => {
    for (const member of ['member-0', 'member-1']) {
      const full = size('float32', `${member}/weights.bin`);
      expect(full).toBeGreaterThan(5_000_000);
      expect(size('float16', `${member}/weights.bin`)).toBe(full / 2);
      expect(size('uint8', `${member}/weights.bin`)).toBe(full / 4);
      for (const dtype of ['float32', 'float16', 'uint8'] as const) {
        expect(storedWeightDtype(JSON.parse(readFileSync(join(folders[dtype]!, member, 'model.json'), 'utf8')))).toBe(dtype);
      }
    }
    const ratio16 = folderBytes(folders.float16!) / folderBytes(folders.float32!);
    const ratio8 = folderBytes(folders.uint8!) / folderBytes(folders.float32!);
    expect(ratio16).toBeGreaterThan(0.5);
    expect(ratio16).toBeLessThan(0.51);
    expect(ratio8).toBeLessThan(0.26);
    // The digests pocovid.json records are of the bytes written (loadModelDir checks them all).
    const meta = JSON.parse(readFileSync(join(folders.float16!, 'pocovid.json'), 'utf8')) as { files: Record<string, { bytes: number }> };
    expect(meta.files['member-0/weights.bin']!.bytes).toBe(size('float16', 'member-0/weights.bin'));
  });

  it('float16 gives float32\'s labels with probabilities within 1e-3; uint8 stays close', async () => {
    let uint8Same = 0;
    let uint8Diff = 0;
    for (const file of frames) {
      const [a, b, c] = await Promise.all([pipelines.float32!.predictFile(file), pipelines.float16!.predictFile(file), pipelines.uint8!.predictFile(file)]);
      expect(b.label).toBe(a.label);
      for (const cls of TINY_CLASSES) {
        expect(Math.abs(b.probabilities![cls]! - a.probabilities![cls]!)).toBeLessThan(1e-3);
        uint8Diff = Math.max(uint8Diff, Math.abs(c.probabilities![cls]! - a.probabilities![cls]!));
      }
      if (c.label === a.label) uint8Same++;
    }
    expect(uint8Same / frames.length).toBeGreaterThanOrEqual(0.9);
    expect(uint8Diff).toBeLessThan(0.05);
  });

  it('refuses to store weights already stored smaller, naming the member', async () => {
    // A run whose fold model is the float16 folder: quantising it again would lose precision unsaid.
    cpSync(folders.float16!, join(work, 'run16', 'fold-0', 'model'), { recursive: true });
    await expect(exportRun(join(work, 'run16'), join(work, 'again'), { page: false, weightsDtype: 'uint8' })).rejects.toThrow(
      /run16 \(member 0\): weight \S+ is already stored as float16; export from the float32 model$/,
    );
    // float32 asks for no change: the folder is copied as it is.
    await exportRun(join(work, 'run16'), join(work, 'same'), { page: false });
    expect(size('float16', 'member-0/weights.bin')).toBe(statSync(join(work, 'same', 'member-0', 'weights.bin')).size);
  });
});
