// `pocovid export --format onnx`: an ONNX file next to each member of a model folder, so that
// ONNX tools (and onnxruntime-web) can use the ensemble without TF.js.
import { join } from 'node:path';
import { initEngine } from '../engine/index.js';
import { loadModelDir, recordModelDirFiles } from '../model_dir/model_dir.js';
import { exportOnnx, type OnnxExportOptions } from './export.js';

/** Name of the ONNX file in each member folder (beside model.json). */
export const ONNX_MEMBER_FILE = 'model.onnx';

/** Writes <dir>/<member>/model.onnx for every member of model folder `dir`; returns the files written. */
export async function exportModelDirOnnx(dir: string, options: OnnxExportOptions = {}): Promise<string[]> {
  await initEngine();
  const loaded = await loadModelDir(dir);
  const written: string[] = [];
  const digests: { rel: string; data: Uint8Array }[] = [];
  try {
    for (const [k, member] of loaded.members.entries()) {
      const rel = `${loaded.meta.members[k]!}/${ONNX_MEMBER_FILE}`;
      const file = join(dir, rel);
      digests.push({ rel, data: (await exportOnnx(member, file, options)).bytes });
      written.push(file);
    }
  } finally {
    for (const member of loaded.members) member.dispose();
  }
  await recordModelDirFiles(dir, digests);
  return written;
}
