// The class and the hold-out group of a file a site drops into the page's adaptation panel, from its
// path as the browser gives it (a folder pick's webkitRelativePath, or the bare file name). The same
// layouts as `data build` (src/data/layouts.ts):
//   <class>/<file>            the class from the folder; each file its own group;
//   <class>/<patient>/<file>  the class from the folder, the group the patient folder (held back
//                             whole: a patient's other clips would otherwise leak into training);
//   Cov…, Pne…, Reg… names    the class from the file-name prefix (labelFromFileName); each file
//                             its own group (no patient can be read from a name).
// A file none of these label is chosen by hand in the panel. Browser-safe.
import { labelFromFileName } from '../data/label_rules.js';

export interface PathLabel {
  /** The class, when the path says it (one of the model's classes). */
  label?: string;
  /** Where the class came from. */
  from?: 'folder' | 'prefix';
  /** What is held back together: "patient:<folder>" or "file:<path>". */
  group: string;
}

export function labelOfPath(path: string, classes: readonly string[]): PathLabel {
  const parts = path.split('/').filter((p) => p.length > 0);
  const name = parts.at(-1) ?? path;
  const folders = parts.slice(0, -1);
  const lower = classes.map((c) => c.toLowerCase());
  // The class folder nearest the file wins: a site's export folder may itself be called anything.
  for (let i = folders.length - 1; i >= 0; i--) {
    const k = lower.indexOf(folders[i]!.toLowerCase());
    if (k < 0) continue;
    const patient = folders[i + 1];
    return { label: classes[k]!, from: 'folder', group: patient ? `patient:${patient}` : `file:${path}` };
  }
  const prefixed = labelFromFileName(name);
  if (prefixed && classes.includes(prefixed)) return { label: prefixed, from: 'prefix', group: `file:${path}` };
  return { group: `file:${path}` };
}
