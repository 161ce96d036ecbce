// Where the built page (index.html, app.js, style.css) lives: dist/page, next to the compiled code
// or under the repository root when running from sources.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The page's files: one list (page/page_files.ts), shared with its service worker.
export { PAGE_FILES } from './page/page_files.js';

/**
 * Headers that make the page cross-origin isolated, so that browsers give it SharedArrayBuffer and
 * TF.js runs its threaded wasm binary on every core (README: what a static host must send). COEP
 * require-corp makes every subresource declare it may be embedded: the page loads only its own
 * files, which say so with CORP same-origin.
 */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

export function findPageDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [process.env['POCOVID_PAGE_DIR'], join(here, '..', 'page'), join(here, '..', '..', 'dist', 'page')];
  return candidates.find((dir): dir is string => dir !== undefined && existsSync(join(dir, 'index.html')));
}
