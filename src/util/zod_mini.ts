// zod's small build, for the schemas the page bundles with the CLI (pocovid.json, file digests,
// adaptation records): the classic API was 455 KB of the page's 1.2 MB model worker. Import it as
// `import * as z from '.../zod_mini.js'` (a namespace import the bundler can prune). Its messages
// come from zod's English locale, as the classic build's do (the small build loads none by itself
// and says only "Invalid input").
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

export * from 'zod/mini';
