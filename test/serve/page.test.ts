// End-to-end: the exported folder served as plain static files, the page in headless Chromium,
// an image chosen, the result card checked against the Node pipeline, and every request recorded
// to prove the image never left the browser.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM build script without types
import { buildPage } from '../../scripts/build-page.mjs';
import { initEngine, tf } from '../../src/engine/index.js';
import { exportRun } from '../../src/infer/export.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { createPipeline } from '../../src/infer/pipeline.js';
import { createServer } from '../../src/serve/server.js';
import { writePng } from '../helpers/media_fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`skipping the page test: ${CHROMIUM} is not installed`);

let work: string;
let exported: string;
let pageDir: string;
let browser: Browser | undefined;

beforeAll(async () => {
  if (!haveChromium) return;
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-page-'));
  pageDir = await buildPage(join(work, 'page'));
  // A run with two folds, exported as an ensemble with the page next to it.
  for (const k of [0, 1]) {
    await saveModelDir(join(work, 'run', `fold-${k}`, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(20 + k)] });
  }
  exported = join(work, 'export');
  const { pageFiles } = await exportRun(join(work, 'run'), exported, { pageDir });
  expect(pageFiles).toContain('index.html');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
});

afterAll(async () => {
  await browser?.close();
});

describe.skipIf(!haveChromium)('in-browser page', () => {
  it('classifies a chosen image in the browser, like the Node pipeline, without sending it anywhere', async () => {
    // Plain static file server over the exported folder: nothing but files.
    const statics = Fastify();
    await statics.register(fastifyStatic, { root: exported });
    const url = await statics.listen({ port: 0, host: '127.0.0.1' });
    const image = join(work, 'scan.png');
    await writePng(image, 32, 32, 5); // already the input size: browser and Node see identical pixels
    const imageBytes = readFileSync(image);
    const expected = await (await createPipeline(exported)).predictImage(image);
    const page = await browser!.newPage({ viewport: { width: 1000, height: 900 } });
    const requests: { method: string; url: string; body: Buffer | null }[] = [];
    page.on('request', (r) => requests.push({ method: r.method(), url: r.url(), body: r.postDataBuffer() }));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${url}/`);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
      await expect(page.textContent('.disclaimer')).resolves.toMatch(/not a diagnostic device/);
      // The runtime chosen for the page (docs/browser-runtime.md): TF.js on its wasm backend, not the
      // ~40× slower pure-JS cpu fallback, which would pass every other check here.
      await expect(page.textContent('#model-info')).resolves.toMatch(/TF\.js wasm$/);
      await page.setInputFiles('#file-input', image);
      await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });
      expect(await page.textContent('#label')).toBe(expected.label);
      const shown = await page.$$eval('.prob-row', (rows) => rows.map((r) => [(r as HTMLElement).dataset['class'], Number((r as HTMLElement).dataset['value'])]));
      expect(shown.map(([c]) => c)).toEqual(TINY_CLASSES);
      for (const [c, p] of shown) expect(p as number).toBeCloseTo(expected.probabilities![c as string]!, 4);
      expect(Number(await page.getAttribute('#uncertainty', 'data-entropy'))).toBeCloseTo(expected.uncertainty!.entropy, 4);
      expect(await page.$eval('#heatmap-canvas', (c) => (c as HTMLCanvasElement).width)).toBe(32);
      await page.screenshot({ path: process.env['POCOVID_PAGE_SCREENSHOT'] ?? join(work, 'page.png'), fullPage: true });
      expect(errors).toEqual([]);
      // Only GETs for the page, the TF.js wasm binary, pocovid.json and the members (no ONNX Runtime
      // files: the page does not use it); no body carries the image.
      expect(requests.filter((r) => r.method !== 'GET')).toEqual([]);
      const needle = imageBytes.subarray(16, 48);
      expect(requests.filter((r) => r.body && r.body.includes(needle))).toEqual([]);
      const paths = requests.map((r) => new URL(r.url).pathname);
      expect(paths).toContain('/member-1/model.json');
      expect(paths.every((p) => /^\/(|index\.html|app\.js|style\.css|pocovid\.json|tfjs-backend-wasm(-simd)?\.wasm|member-\d\/(model\.json|weights\.bin))$/.test(p))).toBe(true);
    } finally {
      await page.close();
      await statics.close();
    }
  });

  it('refuses damaged member files, never labels from NaN outputs, and clears a result when the next file fails', async () => {
    const shots = process.env['POCOVID_PAGE_SCREENSHOT_DIR'] ?? work;
    // (1) One weight file damaged after export: the page checks the digests pocovid.json records.
    const damaged = join(work, 'export-damaged');
    await exportRun(join(work, 'run'), damaged, { pageDir });
    const weights = join(damaged, 'member-1', 'weights.bin');
    const bytes = readFileSync(weights);
    for (let i = 0; i < 32; i++) bytes[100 + i]! ^= 0xff;
    writeFileSync(weights, bytes);
    // (2) A model whose classifier gives NaN, saved normally (its digests match).
    const nanRun = join(work, 'run-nan');
    const broken = tinyModel(22);
    const classifier = broken.getLayer('classifier');
    const nan = classifier.getWeights().map((w) => tf.fill(w.shape, Number.NaN));
    classifier.setWeights(nan);
    tf.dispose(nan);
    await saveModelDir(join(nanRun, 'fold-0', 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [broken] });
    const nanExport = join(work, 'export-nan');
    await exportRun(nanRun, nanExport, { pageDir });
    const image = join(work, 'scan-2.png');
    await writePng(image, 32, 32, 6);
    const notAnImage = join(work, 'notes.png');
    writeFileSync(notAnImage, 'not an image at all');

    const serve = async (root: string) => {
      const statics = Fastify();
      await statics.register(fastifyStatic, { root });
      return { statics, url: await statics.listen({ port: 0, host: '127.0.0.1' }) };
    };
    for (const [name, root] of [['damaged', damaged], ['nan', nanExport], ['good', exported]] as const) {
      const { statics, url } = await serve(root);
      const page = await browser!.newPage({ viewport: { width: 1000, height: 900 } });
      try {
        await page.goto(`${url}/`);
        if (name === 'damaged') {
          await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.startsWith('Model could not be loaded'), undefined, { timeout: 30_000 });
          expect(await page.textContent('#model-info')).toMatch(/^Model could not be loaded: member-1\/weights\.bin: damaged: its sha256 is [0-9a-f]{12}… but pocovid\.json records [0-9a-f]{12}…/);
          expect(await page.getAttribute('body', 'data-ready')).toBeNull();
          await page.screenshot({ path: join(shots, 'page-damaged-model.png'), fullPage: true });
          continue;
        }
        await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
        await page.setInputFiles('#file-input', image);
        if (name === 'nan') {
          await page.waitForSelector('body[data-result="error"]', { timeout: 30_000 });
          expect(await page.textContent('#status')).toBe('scan-2.png: model member-0 gave no usable probabilities for frame 0 (output 0 is NaN): its weights are damaged or diverged; no diagnosis was made');
          expect(await page.isHidden('#result')).toBe(true);
          await page.screenshot({ path: join(shots, 'page-nan-model.png'), fullPage: true });
          continue;
        }
        // A good result, then a file that cannot be read: the old card must not stay up.
        await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });
        await page.setInputFiles('#file-input', notAnImage);
        await page.waitForSelector('body[data-result="error"]', { timeout: 30_000 });
        expect(await page.isHidden('#result')).toBe(true);
        expect(await page.textContent('#status')).toMatch(/notes\.png: this browser cannot decode it as an image/);
        await page.screenshot({ path: join(shots, 'page-error-after-result.png'), fullPage: true });
      } finally {
        await page.close();
        await statics.close();
      }
    }
  });

  it('is served by `pocovid serve` at / together with the model files', async () => {
    const server = await createServer({ model: exported, pageDir });
    try {
      const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
      const html = await (await fetch(`${url}/`)).text();
      expect(html).toContain('not a diagnostic device');
      expect((await (await fetch(`${url}/pocovid.json`)).json()).members).toEqual(['member-0', 'member-1']);
      const member = await fetch(`${url}/member-0/model.json`);
      expect(member.status).toBe(200);
      expect((await member.json()).format).toBe('layers-model');
      const app = await fetch(`${url}/app.js`);
      expect(app.headers.get('content-type')).toMatch(/javascript/);
      await app.arrayBuffer(); // drained, so the connection is idle and close() is immediate
      const hidden = await fetch(`${url}/../config.json`);
      expect(hidden.status).toBe(404);
      await hidden.arrayBuffer();
    } finally {
      await server.close();
    }
  });
});
