// The in-browser page on a 30-frame video, in headless Chromium, as a user meets it:
//   npx tsx bench/page.ts --model <exported folder> [--json] [--isolated on|off] [--threads N] [--side 224]
// prints {"msPerFrame", "loadSeconds", "downloadMB", "longestTaskMs"}:
//   msPerFrame     classifying in the model worker (the decision core: guard, members, Grad-CAM of
//                  the frame shown), per frame, on the second run of the video (the first warms up)
//   loadSeconds    from navigation to the page marking the model ready (page, TF.js wasm, model),
//                  by the page's own clock (body[data-load-timings].pageReady; a page exported
//                  before it had one: when this script saw it, Playwright's polling included)
//   downloadMB     everything the page fetched for both runs: page, TF.js wasm, model files and
//                  ffmpeg.wasm (32 MB, fetched for the first video); the human output splits it
//   longestTaskMs  the longest main-thread task while the videos were read and classified
//                  (Chromium's long-task observer reports tasks over 50 ms only: 0 means none)
//   loadSteps      (when the page says) where the load went: each step's end in ms since navigation
// The video: phantom lung-ultrasound frames (src/data/phantom.ts), 10 s at 15 fps, H.264 by ffmpeg;
// predict's sampling (3 a second, at most 30) keeps 30 frames. The folder is served from
// 127.0.0.1 with the COOP/COEP headers `pocovid serve` sends (--isolated off: as a plain static
// host), so the page runs TF.js wasm on every core (--threads N: the page's ?threads=N). The page is built into a temporary folder
// when the model folder has none.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import fastifyStatic from '@fastify/static';
import Fastify from 'fastify';
// @ts-expect-error plain ESM build script without types
import { buildPage } from '../scripts/build-page.mjs';
import { renderPhantomFrame, samplePhantomScene } from '../src/data/phantom.js';
import { findFfmpeg } from '../src/media/ffmpeg.js';
import { readModelMeta } from '../src/model_dir/model_dir.js';
import { ISOLATION_HEADERS } from '../src/serve/page_dir.js';
import { launchChromium } from '../test/helpers/browser.js';
import { createRng } from '../src/util/rng.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    json: { type: 'boolean', default: false },
    isolated: { type: 'string', default: 'on' },
    side: { type: 'string', default: '224' },
    threads: { type: 'string' },
  },
});
if (!values.model) throw new Error('usage: npx tsx bench/page.ts --model <exported folder> [--json] [--isolated on|off] [--threads N] [--side 224]');
const modelDir = resolve(values.model);
readModelMeta(modelDir); // a clear error naming the folder when it is not a model folder
const isolated = values.isolated !== 'off';
const side = Number(values.side);

const work = mkdtempSync(join(tmpdir(), 'pocovid-bench-page-'));
try {
  const pageDir = existsSync(join(modelDir, 'index.html')) ? modelDir : await buildPage(join(work, 'page'));
  const video = join(work, 'clip.mp4');
  const rng = createRng(7);
  const scene = samplePhantomScene('covid', side, rng);
  const raw = join(work, 'clip.rgb');
  writeFileSync(raw, Buffer.concat(Array.from({ length: 150 }, (_, t) => renderPhantomFrame(scene, t, rng))));
  execFileSync(findFfmpeg().ffmpeg, ['-nostdin', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${side}x${side}`, '-r', '15', '-i', raw,
    '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-f', 'mp4', video]);

  const server = Fastify();
  // Counted where they are sent: the page's workers (model, ffmpeg.wasm) fetch outside the page's view.
  const bytes: Record<'model' | 'decoder' | 'page', number> = { model: 0, decoder: 0, page: 0 };
  server.addHook('onResponse', async (request, reply) => {
    const path = request.url.split('?')[0]!;
    bytes[/^\/(pocovid\.json|shared-weights\.bin|member-\d+\/)/.test(path) ? 'model' : /ffmpeg/.test(path) ? 'decoder' : 'page'] += Number(reply.getHeader('content-length') ?? 0);
  });
  await server.register(fastifyStatic, {
    root: pageDir === modelDir ? modelDir : [pageDir, modelDir],
    setHeaders: (res) => {
      if (isolated) for (const [name, value] of Object.entries(ISOLATION_HEADERS)) res.setHeader(name, value);
    },
  });
  const address = await server.listen({ port: 0, host: '127.0.0.1' });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.addInitScript(() => {
      const w = window as unknown as { __longTasks: number[][]; __marks: Record<string, number[]> };
      w.__longTasks = [];
      w.__marks = { classifying: [], done: [] };
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.__longTasks.push([e.startTime, e.duration]);
      }).observe({ type: 'longtask', buffered: true });
      document.addEventListener('DOMContentLoaded', () => {
        const status = document.getElementById('status')!;
        new MutationObserver(() => {
          if (/^Classifying \d+ frames of /.test(status.textContent ?? '')) w.__marks['classifying']!.push(performance.now());
        }).observe(status, { childList: true, characterData: true, subtree: true });
        new MutationObserver(() => {
          if (document.body.dataset['state'] === 'done') w.__marks['done']!.push(performance.now());
        }).observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
      });
    });
    await page.goto(`${address}/${values.threads ? `?threads=${Number(values.threads)}` : ''}`);
    await page.waitForSelector('body[data-ready="true"], #model-info:text-matches("could not be loaded")', { timeout: 600_000 });
    const ready = await page.evaluate(() => performance.now());
    if ((await page.getAttribute('body', 'data-ready')) !== 'true') throw new Error(`${modelDir}: ${await page.textContent('#model-info')}`);
    const modelInfo = await page.textContent('#model-info');
    // Where the load went (ms since navigation, from the page; absent on a page exported before it said).
    const timings = JSON.parse((await page.getAttribute('body', 'data-load-timings')) ?? 'null') as Record<string, number> | null;
    let frames = 0;
    for (let run = 1; run <= 2; run++) {
      await page.setInputFiles('#file-input', video);
      await page.waitForFunction((n) => (window as unknown as { __marks: Record<string, number[]> }).__marks['done']!.length >= n || document.body.dataset['state'] === 'error', run, { timeout: 1_200_000 });
      if ((await page.getAttribute('body', 'data-state')) === 'error') throw new Error(`the page failed: ${await page.textContent('#status')}`);
      frames = (JSON.parse((await page.textContent('[data-testid="result-json"]'))!) as { frames: unknown[] }).frames.length;
    }
    const { marks, longTasks } = await page.evaluate(() => {
      const w = window as unknown as { __longTasks: number[][]; __marks: Record<string, number[]> };
      return { marks: w.__marks, longTasks: w.__longTasks };
    });
    const msPerFrame = (marks['done']![1]! - marks['classifying']![1]!) / frames;
    const longestTaskMs = Math.max(0, ...longTasks.filter(([start]) => start! >= ready).map(([, duration]) => duration!));
    const total = bytes.model + bytes.decoder + bytes.page;
    // The page's own clock when it says so (the moment it marks itself ready); else when this
    // script saw it, which adds Playwright's polling (measured: 0.4 s on the 2-core machine).
    const loadMs = timings?.['pageReady'] ?? ready;
    const result = { msPerFrame: round(msPerFrame, 1), loadSeconds: round(loadMs / 1000, 2), downloadMB: round(total / 1e6, 2), longestTaskMs: round(longestTaskMs, 0) };
    if (values.json) console.log(JSON.stringify(timings ? { ...result, loadSteps: timings } : result));
    else {
      console.log(`${modelInfo}`);
      console.log(`${frames} frames: ${result.msPerFrame} ms per frame (second run), model ready after ${result.loadSeconds} s (seen by this script after ${round(ready / 1000, 2)} s)`);
      if (timings) {
        const steps = Object.entries(timings);
        // backendReady and filesFetched run side by side: each is shown from the script's end.
        console.log(`load steps (ms since navigation): ${steps.map(([step, at]) => `${step} ${at}`).join(', ')}`);
      }
      console.log(`downloaded ${result.downloadMB} MB: model ${round(bytes.model / 1e6, 2)}, video decoder ${round(bytes.decoder / 1e6, 2)}, page and TF.js ${round(bytes.page / 1e6, 2)}`);
      console.log(`longest main-thread task after load: ${result.longestTaskMs} ms${result.longestTaskMs === 0 ? ' (none over 50 ms)' : ''}`);
    }
  } finally {
    await browser.close();
    await server.close();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}
