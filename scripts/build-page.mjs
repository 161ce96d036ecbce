// Bundles the in-browser page (src/serve/page/) with esbuild into dist/page/ (or a given folder):
// app.js (the main thread: file reading, drawing; no TF.js), model-worker.js (the module worker
// with TF.js core + layers + cpu/wasm backends, the model loader and the decision core),
// sw.js (the service worker that keeps the page usable offline), index.html, style.css, favicon.svg, the TF.js wasm binaries (plain, SIMD, and threaded SIMD for
// cross-origin isolated pages), and the video decoder the page loads only when a video comes in:
// ffmpeg.wasm (@ffmpeg/core's ffmpeg-core.js + .wasm) and @ffmpeg/ffmpeg's worker, bundled as
// ffmpeg-worker.js. Everything is served from the page's own folder, never from a CDN.
// Usage: node scripts/build-page.mjs [outDir]
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
const FFMPEG_CORE_FILES = ['ffmpeg-core.js', 'ffmpeg-core.wasm'];

export async function buildPage(outDir = join(root, 'dist', 'page')) {
  await mkdir(outDir, { recursive: true });
  const common = { bundle: true, format: 'esm', platform: 'browser', target: 'es2020', minify: true, legalComments: 'none', logLevel: 'warning' };
  const define = { 'process.env.NODE_ENV': '"production"' };
  await build({ ...common, entryPoints: [join(root, 'src/serve/page/app.ts')], outfile: join(outDir, 'app.js'), define });
  await build({ ...common, entryPoints: [join(root, 'src/serve/page/model_worker.ts')], outfile: join(outDir, 'model-worker.js'), define });
  await build({ ...common, entryPoints: [join(root, 'src/serve/page/service_worker.ts')], outfile: join(outDir, 'sw.js'), define });
  await build({ ...common, entryPoints: [join(root, 'node_modules/@ffmpeg/ffmpeg/dist/esm/worker.js')], outfile: join(outDir, 'ffmpeg-worker.js') });
  for (const name of ['index.html', 'style.css', 'favicon.svg']) await copyFile(join(root, 'src/serve/page', name), join(outDir, name));
  for (const name of WASM_FILES) await copyFile(join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist', name), join(outDir, name));
  for (const name of FFMPEG_CORE_FILES) await copyFile(join(root, 'node_modules/@ffmpeg/core/dist/esm', name), join(outDir, name));
  return outDir;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildPage(process.argv[2] ? resolve(process.argv[2]) : undefined);
  console.log(`page built in ${out}`);
}
