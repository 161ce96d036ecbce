// The files of the built page (scripts/build-page.mjs), in one list for `export`, `serve` and the
// page's service worker. Browser-safe: the service worker precaches OFFLINE_FILES from it.

/** The video decoder, loaded only when a video comes in (and cached then, for offline use). */
export const VIDEO_DECODER_FILES = ['ffmpeg-worker.js', 'ffmpeg-core.js', 'ffmpeg-core.wasm'] as const;

/** The service worker that keeps the page working offline (service_worker.ts). */
export const SERVICE_WORKER_FILE = 'sw.js';

/**
 * What the page needs to classify an image and to adapt, fetched once by the service worker
 * when it installs. The threaded TF.js binary is loaded only by a cross-origin isolated page, but
 * kept too: isolation depends on the host's headers, not on the page.
 */
export const OFFLINE_FILES = [
  'index.html',
  'app.js',
  'model-worker.js',
  'style.css',
  'favicon.svg',
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
] as const;

export const PAGE_FILES: readonly string[] = [...OFFLINE_FILES, SERVICE_WORKER_FILE, ...VIDEO_DECODER_FILES];
