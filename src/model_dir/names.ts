// The model folder's fixed file names, in a module of its own so that the page's service worker can
// name them without bundling the schema (meta.ts).
export const MODEL_META_FILE = 'pocovid.json';
/** Weights every member has in common, stored once at the folder's root (shared_weights.ts). */
export const SHARED_WEIGHTS_FILE = 'shared-weights.bin';
/** How a member's model.json names it: one level up from member-<k>/. */
export const SHARED_WEIGHTS_PATH = `../${SHARED_WEIGHTS_FILE}`;
