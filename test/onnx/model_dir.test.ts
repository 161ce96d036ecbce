// `export --format onnx` on a model folder: one ONNX file per ensemble member, equal to TF.js.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { BadInputError } from '../../src/errors.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { createModel, disposeBuiltModel } from '../../src/models/index.js';
import { exportModelDirOnnx, ONNX_MEMBER_FILE } from '../../src/onnx/model_dir.js';
import { createOrtRunnerFromSession, createOrtSession, createTfjsRunner } from '../../src/onnx/runtime.js';
import { createRng } from '../../src/util/rng.js';
import { maxAbsDiff, randomInput } from './helpers.js';

await initEngine();
const dir = mkdtempSync(join(tmpdir(), 'pocovid-onnx-dir-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('exportModelDirOnnx', () => {
  it('writes model.onnx beside each member and each equals its TF.js member', async () => {
    const members = [1, 2].map((seed) => createModel('grayscale_cnn', { numClasses: 3, inputSize: [32, 32], seed }));
    const modelDir = join(dir, 'ensemble');
    await saveModelDir(modelDir, { name: 'grayscale_cnn', classes: ['covid', 'pneumonia', 'regular'], cfg: members[0]!.cfg, members: members.map((m) => m.model) });
    const files = await exportModelDirOnnx(modelDir, { opset: 13 });
    expect(files).toEqual([0, 1].map((k) => join(modelDir, `member-${k}`, ONNX_MEMBER_FILE)));
    const x = randomInput(createRng(9), 2, [32, 32, 1]);
    for (const [k, file] of files.entries()) {
      expect(existsSync(file)).toBe(true);
      const ort = await createOrtRunnerFromSession(await createOrtSession(file, { threads: 1 }), [32, 32, 1], [[3]]);
      const [fromOrt] = await ort.run(x, 2);
      const [fromTfjs] = await createTfjsRunner(members[k]!.model).run(x, 2);
      expect(maxAbsDiff(fromOrt!, fromTfjs!)).toBeLessThanOrEqual(1e-5);
      await ort.dispose();
    }
    members.forEach(disposeBuiltModel);
  });

  it('names the folder when it is not a model folder', async () => {
    await expect(exportModelDirOnnx(join(dir, 'nothing'))).rejects.toThrow(BadInputError);
    await expect(exportModelDirOnnx(join(dir, 'nothing'))).rejects.toThrow(/nothing: not a model folder/);
  });
});
