// Export: a run's fold models → one model folder (ensemble or one fold) + a copy of the page, so
// the folder works from any static file server.
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { findPageDir, PAGE_FILES } from '../serve/page_dir.js';
import { collectRun } from '../model_dir/run.js';
import { writeModelDirFiles } from '../model_dir/model_dir.js';
import { type ModelDirMeta } from '../model_dir/meta.js';
import { storeWeightsAs, type WeightDtype } from '../model_dir/weight_dtype.js';
import { foldBatchNorm } from '../model_dir/fold_batchnorm.js';

export interface ExportOptions {
  fold?: number;
  /** Copy the page (default true). */
  page?: boolean;
  /** Built page folder (default: dist/page). */
  pageDir?: string;
  /** How the float32 weights are stored (default float32; float16/uint8: smaller for the page). */
  weightsDtype?: WeightDtype;
  /**
   * Fold every frozen BatchNorm into the convolution before it (default true;
   * src/model_dir/fold_batchnorm.ts): the same model, and MobileNet v1 runs twice as fast in TF.js.
   */
  foldBatchNorm?: boolean;
}

export async function exportRun(run: string, out: string, options: ExportOptions = {}): Promise<{ meta: ModelDirMeta; pageFiles: string[] }> {
  const collected = collectRun(run, options.fold);
  const dtype = options.weightsDtype ?? 'float32';
  // Folded in float32, before the weights are stored in a smaller type.
  const folded = collected.members.map((m, k) => (options.foldBatchNorm === false ? { files: m, folded: [] } : foldBatchNorm(m, `${run} (member ${k})`)));
  const members = folded.map((f, k) => storeWeightsAs(f.files, dtype, `${run} (member ${k})`));
  const source = { ...collected.info.source, foldedBatchNorm: folded[0]!.folded.length };
  const meta = await writeModelDirFiles(out, { ...collected.info, source }, members);
  const pageFiles: string[] = [];
  const pageDir = options.page === false ? undefined : (options.pageDir ?? findPageDir());
  if (pageDir) {
    const present = new Set(await readdir(pageDir));
    for (const name of PAGE_FILES) {
      if (!present.has(name)) continue;
      await copyFile(join(pageDir, name), join(out, name));
      pageFiles.push(name);
    }
  }
  return { meta, pageFiles };
}
