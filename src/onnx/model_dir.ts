// `pocovid export --format onnx`: an ONNX file next to each member of a model folder, so that
// ONNX tools (and onnxruntime-web) can use the ensemble without TF.js.
import { join } from 'node:path';
import { initEngine } from '../engine/index.js';
import { loadModelDir } from '../infer/model_dir.js';
import { exportOnnx, type OnnxExportOptions } from './export.js';

/** Name of the ONNX file in each member folder (beside model.json). */
export const ONNX_MEMBER_FILE = 'model.onnx';

/** Writes <dir>/<member>/model.onnx for every member of model folder `dir`; returns the files written. */
export async function exportModelDirOnnx(dir: string, options: OnnxExportOptions = {}): Promise<string[]> {
  await initEngine();
  const loaded = await loadModelDir(dir);
  const written: string[] = [];
  try {
    for (const [k, member] of loaded.members.entries()) {
      const file = join(dir, loaded.meta.members[k]!, ONNX_MEMBER_FILE);
      await exportOnnx(member, file, options);
      written.push(file);
    }
  } finally {
    for (const member of loaded.members) member.dispose();
  }
  return written;
}
