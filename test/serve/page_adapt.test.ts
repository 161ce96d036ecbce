// "Adapt to my data" end to end in headless Chromium: a small CNN trained on phantom scenes of one
// probe geometry (site A) is exported with the page; the page is given labelled PNGs of another
// geometry (site B), adapts in the browser, and the held-back accuracy must rise. The adapted
// model is then what classifies, it survives a reload (IndexedDB), it is exported as a file,
// reset, and loaded again from that file; the page keeps working offline after its first load;
// and no request ever carries image data.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { vi } from 'vitest';
import { adaptModel } from '../../src/adapt/adapt.js';
import { disposeBuiltModel } from '../../src/models/cut.js';
import { main } from '../../src/cli/main.js';
import { PHANTOM_CLASSES } from '../../src/data/phantom.js';
import { initEngine } from '../../src/engine/index.js';
import { exportRun } from '../../src/infer/export.js';
import { resizeRgb } from '../../src/media/resize.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { layersModelToFiles } from '../../src/model_dir/layers_io.js';
import { clipInputs } from '../../src/models/preprocess.js';
import { CHROMIUM, haveChromium, launchChromium } from '../helpers/browser.js';
// @ts-expect-error plain ESM build script without types
import { buildPage } from '../../scripts/build-page.mjs';
import { phantomFrames, writePhantomPng } from '../helpers/phantom_media.js';
import { tinyCfg, tinyModel } from '../helpers/tiny_model.js';

if (!haveChromium) console.warn(`skipping the adaptation page test: ${CHROMIUM} is not installed`);

const SIZE = 48;
const SITE_B = { gain: 1.7, sectorDegrees: 16, apex: 1.2 };
const PREFIX = { covid: 'Cov', pneumonia: 'Pneu', regular: 'Reg' } as const;

let work: string;
let shots: string;
let statics: FastifyInstance;
let url: string;
let browser: Browser | undefined;
const siteB: string[] = [];
let unlabelled: string;
let broken: string;
let probe: string;
let shared: string;
let whole: string;

beforeAll(async () => {
  if (!haveChromium) return;
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-adapt-page-'));
  shots = process.env['POCOVID_PAGE_SCREENSHOTS'] ?? join(work, 'shots');
  mkdirSync(shots, { recursive: true });
  const pageDir = await buildPage(join(work, 'page'));
  // Site A's model: the CNN trained whole on site A (by the adaptation core itself, every layer
  // trainable), then saved with only its classifier trainable, as the default recipe saves a
  // logistic head on a frozen backbone.
  const cfg = tinyCfg(SIZE);
  const siteA = PHANTOM_CLASSES.flatMap((label, k) =>
    Array.from({ length: 24 }, (_, i) => {
      const frame = phantomFrames(label, 96, 1, 1 + 100 * k + i)[0]!;
      return { name: `${label}-${i}`, label, group: `file:${label}-${i}`, kind: 'image' as const, inputs: clipInputs([{ width: SIZE, height: SIZE, rgb: resizeRgb(frame, 96, 96, SIZE, SIZE) }], cfg) };
    }),
  );
  const fresh = tinyModel(3, { size: SIZE, filters: [16, 32], hidden: false });
  const trained = await adaptModel([await layersModelToFiles(fresh)], { classes: PHANTOM_CLASSES, cfg }, siteA, { mode: 'head', epochs: 60, lr: 1e-2, batchSize: 16, seed: 0, heldOutFraction: 0.3 });
  expect(trained.result.after.accuracy).toBeGreaterThan(0.8);
  const model = trained.members[0]!.model;
  // The same model with every layer trainable (as a model trained from scratch is saved).
  await saveModelDir(join(work, 'run3', 'fold-0', 'model'), { name: 'site-a-whole', classes: [...PHANTOM_CLASSES], cfg, members: [model] });
  for (const layer of model.layers) layer.trainable = layer.name === 'classifier';
  await saveModelDir(join(work, 'run', 'fold-0', 'model'), { name: 'site-a', classes: [...PHANTOM_CLASSES], cfg, members: [model] });
  // A two-fold run whose folds share that frozen backbone and differ in their classifier, as the
  // default recipe's folds do: its export stores the backbone once and the page runs it once.
  await saveModelDir(join(work, 'run2', 'fold-0', 'model'), { name: 'site-a', classes: [...PHANTOM_CLASSES], cfg, members: [model] });
  const [kernel, bias] = model.getLayer('classifier').getWeights();
  const nudged = tf.tidy(() => tf.add(kernel!, tf.randomNormal(kernel!.shape, 0, 0.3, 'float32', 4)));
  model.getLayer('classifier').setWeights([nudged, bias!]);
  nudged.dispose();
  await saveModelDir(join(work, 'run2', 'fold-1', 'model'), { name: 'site-a', classes: [...PHANTOM_CLASSES], cfg, members: [model] });
  trained.members.forEach(disposeBuiltModel);
  fresh.dispose();
  const exported = join(work, 'export');
  const { pageFiles } = await exportRun(join(work, 'run'), exported, { pageDir });
  expect(pageFiles).toContain('sw.js');
  shared = join(work, 'export-shared');
  await exportRun(join(work, 'run2'), shared, { pageDir });
  whole = join(work, 'export-whole');
  await exportRun(join(work, 'run3'), whole, { pageDir });
  // Site B: 12 labelled PNGs per class (the class in the POCUS file-name prefix), one more whose
  // class must be chosen by hand, one that is not an image at all, and one to classify.
  const files = join(work, 'site-b');
  mkdirSync(files);
  for (const [k, label] of PHANTOM_CLASSES.entries()) {
    for (let i = 0; i < 12; i++) siteB.push(await writePhantomPng(join(files, `${PREFIX[label]}_b${i}.png`), label, 96, 5000 + 100 * k + i, SITE_B));
  }
  unlabelled = await writePhantomPng(join(files, 'scan_0042.png'), 'covid', 96, 5077, SITE_B);
  broken = join(files, 'Cov_broken.png');
  writeFileSync(broken, 'this is not an image');
  probe = await writePhantomPng(join(work, 'probe.png'), 'regular', 96, 9001, SITE_B);
  statics = Fastify();
  await statics.register(fastifyStatic, { root: exported });
  url = await statics.listen({ port: 0, host: '127.0.0.1' });
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await statics?.close();
});

interface Recorded {
  method: string;
  url: string;
  body: Buffer | null;
}

async function open(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  return page;
}

/** Classifies a file with the page's decision; its probabilities. */
async function classify(page: Page, file: string): Promise<Record<string, number>> {
  await page.evaluate(() => delete document.body.dataset['state']);
  await page.setInputFiles('#file-input', file);
  await page.waitForSelector('body[data-state="done"]', { timeout: 60_000 });
  return (JSON.parse((await page.textContent('[data-testid="result-json"]'))!) as { probabilities: Record<string, number> }).probabilities;
}

const differ = (a: Record<string, number>, b: Record<string, number>): boolean => PHANTOM_CLASSES.some((c) => Math.abs(a[c]! - b[c]!) > 1e-4);
const same = (a: Record<string, number>, b: Record<string, number>): void => PHANTOM_CLASSES.forEach((c) => expect(Math.abs(a[c]! - b[c]!)).toBeLessThan(1e-6));

describe.skipIf(!haveChromium)('adapting in the page', () => {
  it('raises the held-back accuracy on a new site, keeps, exports, resets and reloads the adaptation, works offline, and sends no image', async () => {
    const context = await browser!.newContext({ viewport: { width: 1000, height: 1400 }, acceptDownloads: true });
    const requests: Recorded[] = [];
    context.on('request', (r) => requests.push({ method: r.method(), url: r.url(), body: r.postDataBuffer() }));
    const errors: string[] = [];
    try {
      const page = await open(context);
      page.on('pageerror', (e) => errors.push(e.message));
      await page.waitForSelector('body[data-offline="ready"]', { timeout: 60_000 });
      const shipped = await classify(page, probe);
      expect(await page.isVisible('[data-testid="adapted-info"]')).toBe(false);

      await page.setInputFiles('[data-testid="adapt-files"]', [...siteB, unlabelled, broken]);
      // The bad file is named and left out; the unlabelled one waits for a class.
      await page.waitForFunction(() => document.querySelectorAll('#adapt-rows td.error').length === 1 && !/reading/.test(document.getElementById('adapt-rows')!.textContent!), undefined, { timeout: 60_000 });
      await expect(page.textContent('#adapt-rows td.error')).resolves.toMatch(/^Cov_broken\.png: /);
      await expect(page.textContent('#adapt-count')).resolves.toBe('37 file(s), 37 frame(s); choose a class for 1');
      expect(await page.isDisabled('[data-testid="adapt-run"]')).toBe(true);
      await page.selectOption('select[aria-label="class of scan_0042.png"]', 'covid');
      await page.click('[data-testid="adapt-run"]');
      await page.waitForSelector('body[data-adapt="done"], body[data-adapt="error"]', { timeout: 120_000 });
      await expect(page.textContent('#adapt-status')).resolves.toMatch(/^Adapted\. .*kept in this browser/);
      const result = JSON.parse((await page.textContent('[data-testid="adapt-result"]'))!);
      expect(result.trainFrames + result.heldOutFrames).toBe(37);
      expect(result.heldOutFrames).toBe(12); // round(0.3 × 12 or 13) files of each class
      expect(result.after.accuracy).toBeGreaterThan(result.before.accuracy + 0.1);
      expect(result.after.balancedAccuracy).toBeGreaterThan(result.before.balancedAccuracy + 0.1);
      expect(result.seconds).toBeGreaterThan(0);
      expect(result.settings).toMatchObject({ mode: 'head', seed: 0 });
      await expect(page.textContent('[data-testid="adapted-info"]')).resolves.toMatch(/^Adapted in this browser on \d{4}-\d\d-\d\d \(head, \d+ frames\): held-back frame accuracy [\d.]+ → [\d.]+\.$/);
      await page.locator('#adapt').screenshot({ path: join(shots, 'adapt-panel.png') });

      // The adapted model decides from now on.
      const adapted = await classify(page, probe);
      expect(differ(adapted, shipped)).toBe(true);

      // Kept in this browser: a reload uses it.
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
      expect(await page.isVisible('[data-testid="adapted-info"]')).toBe(true);
      same(await classify(page, probe), adapted);

      // Exported as a file (weights and figures, no image), reset, and loaded again.
      const download = page.waitForEvent('download');
      await page.click('[data-testid="adapt-export"]');
      const saved = join(work, 'adaptation.json');
      await (await download).saveAs(saved);
      const record = JSON.parse(readFileSync(saved, 'utf8'));
      expect(record).toMatchObject({ format: 'pocovid-adaptation', version: 1, model: { name: 'site-a' } });
      expect(record.members[0].weights.map((w: { name: string }) => w.name)).toEqual(['classifier/kernel', 'classifier/bias']);
      expect(record.conformal.calibratedOn).toBe('held-out');
      await page.click('[data-testid="adapt-reset"]');
      await page.waitForSelector('body[data-adapted="false"]');
      same(await classify(page, probe), shipped);
      await page.setInputFiles('[data-testid="adapt-import"]', saved);
      await page.waitForSelector('body[data-adapted="true"]');
      same(await classify(page, probe), adapted);
      // A damaged file is refused with the reason, and the model in use stays.
      const damaged = join(work, 'damaged.json');
      writeFileSync(damaged, JSON.stringify({ ...record, model: { name: 'other', key: 'f'.repeat(64) } }));
      await page.setInputFiles('[data-testid="adapt-import"]', damaged);
      await page.waitForFunction(() => /^Load: damaged\.json: made for another model/.test(document.getElementById('adapt-status')!.textContent!));
      same(await classify(page, probe), adapted);

      // Offline after the first load: the page, the model and the kept adaptation all come back.
      await context.setOffline(true);
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
      expect(await page.isVisible('[data-testid="adapted-info"]')).toBe(true);
      same(await classify(page, probe), adapted);
      await context.setOffline(false);
    } finally {
      await context.close();
    }
    // Nothing left the device: every request is a GET of the page's own files, with no body.
    expect(requests.length).toBeGreaterThan(0);
    for (const r of requests) {
      expect(r.method, r.url).toBe('GET');
      expect(r.body, r.url).toBeNull();
      expect(r.url.startsWith(`${url}/`), r.url).toBe(true);
      expect(new URL(r.url).search, r.url).toBe('');
      expect(new URL(r.url).pathname, r.url).toMatch(/^\/([a-z0-9.-]+\.(html|js|css|svg|wasm|json)|member-\d+\/(model\.json|weights\.bin))?$/);
    }
    expect(errors).toEqual([]);
  }, 300_000);

  it('loads an ensemble that shares its frozen backbone once, runs it once per frame, and gives predict\'s answer', async () => {
    expect(existsSync(join(shared, 'shared-weights.bin'))).toBe(true);
    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
    try {
      await main(['node', 'pocovid', 'predict', '--model', shared, '--json', probe]);
    } finally {
      log.mockRestore();
      process.exitCode = 0;
    }
    const cli = (JSON.parse(out.join('\n')) as { probabilities: Record<string, number> }[])[0]!;
    const server = Fastify();
    await server.register(fastifyStatic, { root: shared });
    const address = await server.listen({ port: 0, host: '127.0.0.1' });
    const context = await browser!.newContext();
    const fetched: string[] = [];
    context.on('request', (r) => fetched.push(new URL(r.url()).pathname));
    try {
      const page = await context.newPage();
      await page.goto(`${address}/`);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
      await expect(page.textContent('#model-info')).resolves.toMatch(/— 2 member\(s\) sharing one frozen backbone, 48×48 input, /);
      // The backbone's weights are known to be the members' common bytes from the shared file.
      expect(Number(await page.getAttribute('body', 'data-shared-weights'))).toBeGreaterThan(0);
      // Where the load went, step by step, in ms since navigation: each step after the one it waits for.
      const steps = JSON.parse((await page.getAttribute('body', 'data-load-timings'))!) as Record<string, number>;
      expect(Object.keys(steps)).toEqual(['workerCreated', 'scriptEvaluated', 'backendReady', 'filesFetched', 'membersBuilt', 'ready', 'readyMessage', 'pageReady']);
      const now = await page.evaluate(() => performance.now());
      expect(steps['workerCreated']).toBeGreaterThan(0);
      for (const [before, after] of [['workerCreated', 'scriptEvaluated'], ['scriptEvaluated', 'backendReady'], ['scriptEvaluated', 'filesFetched'], ['backendReady', 'membersBuilt'], ['filesFetched', 'membersBuilt'], ['membersBuilt', 'ready'], ['ready', 'readyMessage'], ['readyMessage', 'pageReady']]) {
        expect(steps[after]!, `${before} → ${after}`).toBeGreaterThanOrEqual(steps[before]!);
      }
      expect(steps['pageReady']).toBeLessThanOrEqual(now);
      await page.setInputFiles('#file-input', probe);
      await page.waitForSelector('body[data-state="done"]', { timeout: 60_000 });
      const result = JSON.parse((await page.textContent('[data-testid="result-json"]'))!) as { probabilities: Record<string, number> };
      for (const c of PHANTOM_CLASSES) expect(Math.abs(result.probabilities[c]! - cli.probabilities[c]!)).toBeLessThan(1e-5);
      // Fetched once, though both members' model.json name it.
      expect(fetched.filter((p) => p === '/shared-weights.bin')).toHaveLength(1);
    } finally {
      await context.close();
      await server.close();
    }
  }, 120_000);

  it('takes files dropped on the panel, trains convolutions in the browser (the gradient kernels TF.js wasm lacks), and offers a new layer first for a model that trained every layer', async () => {
    const server = Fastify();
    await server.register(fastifyStatic, { root: whole });
    const address = await server.listen({ port: 0, host: '127.0.0.1' });
    const context = await browser!.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${address}/`);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
      expect(await page.inputValue('[data-testid="adapt-mode"]')).toBe('new-layer');
      expect(Number(await page.inputValue('#adapt-lr'))).toBe(Math.min(0.003, 0.1 / 32)); // the classifier reads 32 features
      await page.selectOption('[data-testid="adapt-mode"]', 'head');
      expect(Number(await page.inputValue('#adapt-lr'))).toBe(0.003);
      await page.fill('#adapt-epochs', '2');
      // Dropped on the panel rather than chosen: the same list, classes from the Cov/Pneu/Reg names.
      const dropped = siteB.filter((_, i) => i % 4 === 0).map((file) => ({ name: basename(file), bytes: Array.from(readFileSync(file)) }));
      await page.evaluate((files) => {
        const transfer = new DataTransfer();
        for (const f of files) transfer.items.add(new File([Uint8Array.from(f.bytes)], f.name, { type: 'image/png' }));
        document.getElementById('adapt')!.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      }, dropped);
      await page.waitForFunction((n) => document.querySelectorAll('#adapt-rows tr').length === n, dropped.length);
      await page.waitForFunction(() => !/reading/.test(document.getElementById('adapt-rows')!.textContent!) && !(document.getElementById('adapt-run') as HTMLButtonElement).disabled, undefined, { timeout: 60_000 });
      await page.click('[data-testid="adapt-run"]');
      await page.waitForSelector('body[data-adapt="done"], body[data-adapt="error"]', { timeout: 120_000 });
      await expect(page.textContent('#adapt-status')).resolves.toMatch(/^Adapted\./);
      const record = JSON.parse((await page.textContent('[data-testid="adapt-result"]'))!);
      expect(record.settings).toMatchObject({ mode: 'head', epochs: 2 });
    } finally {
      await context.close();
      await server.close();
    }
  }, 120_000);
});
