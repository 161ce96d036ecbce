// Finding the source files of a POCUS-layout folder and labelling them by file-name prefix. Their
// type is taken from their bytes when they are read (src/media/sniff.ts), never from the name.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type Probe = 'convex' | 'linear';
export const ALL_PROBES: readonly Probe[] = ['convex', 'linear'];

export interface SourceFile {
  /** Relative to the source folder, '/'-separated (the key used by crop.json and the manifest). */
  rel: string;
  name: string;
  probe: Probe;
  folder: 'pocus_videos' | 'pocus_images';
}

/**
 * Every entry directly inside pocus_{videos,images}/<probe> for the asked probes, sorted so that
 * builds are reproducible. Sub-folders (e.g. linear/label_uncertain) are returned as well: the
 * caller reports them as skipped rather than silently dropping them.
 */
export function listSources(sourceDir: string, probes: readonly Probe[]): { files: SourceFile[]; folders: string[] } {
  const files: SourceFile[] = [];
  const folders: string[] = [];
  for (const folder of ['pocus_videos', 'pocus_images'] as const) {
    for (const probe of probes) {
      const dir = join(sourceDir, folder, probe);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue; // a layout without e.g. linear images is fine
      }
      for (const name of names.sort()) {
        if (name.startsWith('.')) continue;
        const rel = `${folder}/${probe}/${name}`;
        let isDir = false;
        try {
          isDir = statSync(join(dir, name)).isDirectory();
        } catch {
          // unreadable entries are reported by the builder when it opens them
        }
        if (isDir) folders.push(rel);
        else files.push({ rel, name, probe, folder });
      }
    }
  }
  return { files, folders };
}
