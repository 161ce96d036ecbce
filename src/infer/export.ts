// Export: a run's fold models → one model folder (ensemble or one fold) + a copy of the page, so
// the folder works from any static file server.
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { findPageDir, PAGE_FILES } from '../serve/page_dir.js';
import { collectRun } from '../model_dir/run.js';
import { writeModelDirFiles } from '../model_dir/model_dir.js';
import { type ModelDirMeta } from '../model_dir/meta.js';
import { storeWeightsAs, type WeightDtype } from '../model_dir/weight_dtype.js';

export interface ExportOptions {
  fold?: number;
  /** Copy the page (default true). */
  page?: boolean;
  /** Built page folder (default: dist/page). */
  pageDir?: string;
  /** How the float32 weights are stored (default float32; float16/uint8: smaller for the page). */
  weightsDtype?: WeightDtype;
}

export async function exportRun(run: string, out: string, options: ExportOptions = {}): Promise<{ meta: ModelDirMeta; pageFiles: string[] }> {
  const collected = collectRun(run, options.fold);
  const dtype = options.weightsDtype ?? 'float32';
  const members = collected.members.map((m, k) => storeWeightsAs(m, dtype, `${run} (member ${k})`));
  const meta = await writeModelDirFiles(out, collected.info, members);
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
