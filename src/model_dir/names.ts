// The model folder's fixed file name, in a module of its own so that the page's service worker can
// name it without bundling the schema (meta.ts).
export const MODEL_META_FILE = 'pocovid.json';
