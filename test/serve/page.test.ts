// End-to-end: the exported folder served as plain static files, the page in headless Chromium.
// The page must give the answer `pocovid predict --json` gives for the same files (a phantom PNG, a
// GIF and an H.264 MP4: same label, same frame count, probabilities within 1e-5, the same
// prediction set, shown on the card), clear a previous result before the next file, refuse what
// the guard refuses with the input's thumbnail, load the video decoder only for videos, and never
// send a file anywhere.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CHROMIUM, haveChromium, launchChromium } from '../helpers/browser.js';
// @ts-expect-error plain ESM build script without types
import { buildPage } from '../../scripts/build-page.mjs';
import { main } from '../../src/cli/main.js';
import { PHANTOM_CLASSES } from '../../src/data/phantom.js';
import { initEngine, tf } from '../../src/engine/index.js';
import { frameFeatures } from '../../src/guard/features.js';
import { fitGuard } from '../../src/guard/guard.js';
import { exportRun } from '../../src/infer/export.js';
import type { ConformalCalibration } from '../../src/eval/conformal.js';
import { saveModelDir, setModelConformal } from '../../src/model_dir/model_dir.js';
import { createServer } from '../../src/serve/server.js';
import { createRng } from '../../src/util/rng.js';
import { phantomFrames, writePhantomH264, writePhantomPng, writePhantomVideo } from '../helpers/phantom_media.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

if (!haveChromium) console.warn(`skipping the page test: ${CHROMIUM} is not installed`);

let work: string;
let exported: string;
let pageDir: string;
let shots: string;
let browser: Browser | undefined;
let statics: FastifyInstance;
let url: string;
const media: Record<'png' | 'gif' | 'mp4' | 'avi' | 'mpeg4' | 'noise', string> = { png: '', gif: '', mp4: '', avi: '', mpeg4: '', noise: '' };

interface PredictJson {
  file: string;
  kind: string;
  format?: string;
  label: string | null;
  probabilities: Record<string, number> | null;
  frames?: { index: number; time: number; label: string | null; probabilities: Record<string, number> }[];
  guard?: { flagged: boolean; reason: string };
  predictionSet?: { classes: string[]; coverage: number; level: string; decided: boolean; text: string; calibrationSize: number };
  error?: string;
}

/**
 * Far from any borderline, so that float rounding between the engines cannot change a set: every
 * image's set holds every class (scores all 1), every video's only its label (scores all 0.01).
 */
const CALIBRATION: ConformalCalibration = {
  kind: 'pocovid-conformal', version: 1, method: 'aps', lambda: 0, kReg: 0, classes: TINY_CLASSES, coverage: 0.9, calibratedOn: 'out-of-fold',
  levels: { frame: { n: 9, scores: new Array<number>(9).fill(1) }, video: { n: 9, scores: new Array<number>(9).fill(0.01) } },
};

/** `pocovid predict --json` in this process: what the page must agree with. */
async function predictJson(files: string[]): Promise<PredictJson[]> {
  const out: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  try {
    process.exitCode = 0;
    await main(['node', 'pocovid', 'predict', '--model', exported, '--json', ...files]);
  } finally {
    log.mockRestore();
    process.exitCode = 0;
  }
  return JSON.parse(out.join('\n')) as PredictJson[];
}

beforeAll(async () => {
  if (!haveChromium) return;
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-page-'));
  shots = process.env['POCOVID_PAGE_SCREENSHOTS'] ?? join(work, 'shots');
  mkdirSync(shots, { recursive: true });
  pageDir = await buildPage(join(work, 'page'));
  // A run with two folds and a guard fitted on phantom frames, exported as an ensemble with the page.
  const features = PHANTOM_CLASSES.flatMap((label, k) => phantomFrames(label, 160, 4, 100 + k).map((f) => frameFeatures(f, 160, 160)));
  const guard = fitGuard([...features, ...PHANTOM_CLASSES.flatMap((label, k) => phantomFrames(label, 160, 4, 200 + k).map((f) => frameFeatures(f, 160, 160)))]);
  for (const k of [0, 1]) {
    await saveModelDir(join(work, 'run', `fold-${k}`, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(20 + k)], guard });
  }
  exported = join(work, 'export');
  const { pageFiles } = await exportRun(join(work, 'run'), exported, { pageDir });
  expect(pageFiles).toEqual(expect.arrayContaining(['index.html', 'app.js', 'ffmpeg-core.wasm', 'ffmpeg-worker.js']));
  // The calibration travels in pocovid.json, which the page reads as predict does.
  await setModelConformal(exported, CALIBRATION);
  media.png = await writePhantomPng(join(work, 'scan.png'), 'covid', 160, 7);
  media.gif = await writePhantomVideo(join(work, 'clip.gif'), 'pneumonia', 120, 12, 5, 8);
  media.mp4 = writePhantomH264(join(work, 'clip.mp4'), 'regular', 128, 25, 10, 9);
  // The demo's own kinds, which browsers do not play: MJPEG in AVI, MPEG-4 Part 2 in MP4.
  media.avi = await writePhantomVideo(join(work, 'clip.avi'), 'covid', 112, 10, 5, 10);
  media.mpeg4 = await writePhantomVideo(join(work, 'part2.mp4'), 'pneumonia', 112, 10, 5, 11);
  const noise = new Uint8Array(96 * 96 * 3);
  const rng = createRng(5);
  for (let i = 0; i < noise.length; i++) noise[i] = rng.int(256);
  const sharp = (await import('sharp')).default;
  media.noise = join(work, 'noise.png');
  await sharp(Buffer.from(noise), { raw: { width: 96, height: 96, channels: 3 } }).png().toFile(media.noise);
  statics = Fastify();
  await statics.register(fastifyStatic, { root: exported });
  url = await statics.listen({ port: 0, host: '127.0.0.1' });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await statics?.close();
});

interface Recorded {
  requests: { method: string; url: string; body: Buffer | null }[];
  errors: string[];
}

async function openPage(): Promise<{ page: Page; recorded: Recorded }> {
  const page = await browser!.newPage({ viewport: { width: 1000, height: 1000 } });
  const recorded: Recorded = { requests: [], errors: [] };
  page.on('request', (r) => recorded.requests.push({ method: r.method(), url: r.url(), body: r.postDataBuffer() }));
  page.on('pageerror', (e) => recorded.errors.push(e.message));
  await page.goto(`${url}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  return { page, recorded };
}

/** Chooses a file and waits for the page to finish with it; the page's result JSON (or null). */
async function analyse(page: Page, file: string): Promise<PredictJson | null> {
  await page.setInputFiles('#file-input', file);
  await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 120_000 });
  const text = await page.textContent('[data-testid="result-json"]');
  return text ? (JSON.parse(text) as PredictJson) : null;
}

function expectSameAnswer(pageResult: PredictJson, cli: PredictJson): void {
  expect(pageResult.file).toBe(basename(cli.file));
  expect(pageResult.kind).toBe(cli.kind);
  expect(pageResult.format).toBe(cli.format);
  expect(pageResult.label).toBe(cli.label);
  expect(pageResult.guard?.flagged).toBe(cli.guard?.flagged);
  // The issue asks for 1e-3; the same decoder command and resize leave only float rounding
  // (ONNX Runtime in Node, TF.js in the page), so this holds to 1e-5.
  for (const c of TINY_CLASSES) expect(Math.abs(pageResult.probabilities![c]! - cli.probabilities![c]!)).toBeLessThan(1e-5);
  expect(pageResult.predictionSet).toEqual(cli.predictionSet);
  expect(pageResult.frames?.length).toBe(cli.frames?.length);
  pageResult.frames?.forEach((f, i) => {
    const want = cli.frames![i]!;
    expect(f.time).toBeCloseTo(want.time, 6);
    for (const c of TINY_CLASSES) expect(Math.abs(f.probabilities[c]! - want.probabilities[c]!)).toBeLessThan(1e-5);
  });
}

describe.skipIf(!haveChromium)('in-browser page', () => {
  it('gives predict --json\'s answer for a phantom PNG, a GIF, an H.264 MP4, an MJPEG AVI and an MPEG-4 Part 2 MP4, and sends nothing', async () => {
    const cli = await predictJson([media.png, media.gif, media.mp4, media.avi, media.mpeg4]);
    expect(cli.map((r) => r.error)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(cli.map((r) => [r.kind, r.format, r.frames?.length])).toEqual([
      ['image', 'png', undefined],
      ['video', 'gif', 12],
      ['video', 'mp4', 9],
      ['video', 'avi', 10],
      ['video', 'mp4', 10],
    ]);
    const { page, recorded } = await openPage();
    try {
      await expect(page.textContent('.disclaimer')).resolves.toMatch(/not a diagnostic device/);
      // The runtime chosen for the page (docs/browser-runtime.md): TF.js on its wasm backend, with
      // SIMD; one thread from a plain static host (no COOP/COEP headers: no SharedArrayBuffer).
      await expect(page.textContent('#model-info')).resolves.toMatch(/TF\.js wasm SIMD, 1 thread \(not cross-origin isolated\)$/);

      const image = await analyse(page, media.png);
      expectSameAnswer(image!, cli[0]!);
      expect(await page.textContent('#label')).toBe(cli[0]!.label);
      const imageSet = cli[0]!.predictionSet!;
      expect(imageSet).toMatchObject({ level: 'frame', decided: false });
      await expect(page.textContent('[data-testid="prediction-set"]')).resolves.toBe(
        `90% prediction set: ${imageSet.classes[0]}, ${imageSet.classes[1]} or ${imageSet.classes[2]} — cannot decide`,
      );
      expect(await page.$eval('#heatmap-canvas', (c) => (c as HTMLCanvasElement).width)).toBe(32);
    await expect(page.textContent('#timing')).resolves.toMatch(/^1 frame in [\d.]+ s on this device: \d+ ms per frame$/);
      // The video decoder is not fetched for an image.
      expect(recorded.requests.filter((r) => /ffmpeg/.test(r.url))).toEqual([]);
      await page.screenshot({ path: join(shots, 'image.png'), fullPage: true });

      for (const [k, file] of [[1, media.gif], [2, media.mp4], [3, media.avi], [4, media.mpeg4]] as const) {
        const video = await analyse(page, file);
        expectSameAnswer(video!, cli[k]!);
        expect(cli[k]!.predictionSet).toMatchObject({ level: 'video', classes: [cli[k]!.label], decided: true });
        await expect(page.textContent('[data-testid="prediction-set"]')).resolves.toBe(`90% prediction set: ${cli[k]!.label} — decided`);
        // A GIF is a video: a timeline with one column per frame, on a time axis.
        expect(await page.$$eval('#timeline .frame', (cols) => cols.length)).toBe(cli[k]!.frames!.length);
        expect(await page.isVisible('#timeline-wrap')).toBe(true);
        const ticks = await page.$$eval('#axis .tick', (els) => els.map((e) => Number(e.textContent)));
        expect(ticks[0]).toBe(0);
        expect(ticks.length).toBeGreaterThan(1);
        // The time per frame, with the decoder's one-off loading told apart (first video only).
        const timing = new RegExp(`^${cli[k]!.frames!.length} frames in [\\d.]+ s on this device: \\d+ ms per frame${k === 1 ? ' \\(and [\\d.]+ s to load the video decoder, once\\)' : ''}$`);
        await expect(page.textContent('#timing')).resolves.toMatch(timing);
        await page.screenshot({ path: join(shots, `video-${k}.png`), fullPage: true });
      }
      expect(recorded.errors).toEqual([]);
      // Only GETs from this origin, for the page, its decoders and the model; no body carries a file.
      expect(recorded.requests.filter((r) => r.method !== 'GET' || !r.url.startsWith(url))).toEqual([]);
      for (const file of [media.png, media.gif, media.mp4, media.avi, media.mpeg4]) {
        const needle = readFileSync(file).subarray(64, 128);
        expect(recorded.requests.filter((r) => r.body && r.body.includes(needle))).toEqual([]);
      }
      const paths = recorded.requests.map((r) => new URL(r.url).pathname);
      expect(paths).toEqual(expect.arrayContaining(['/member-1/model.json', '/ffmpeg-core.wasm']));
      const allowed = /^\/(|index\.html|app\.js|model-worker\.js|style\.css|favicon\.svg|pocovid\.json|tfjs-backend-wasm(-simd)?\.wasm|ffmpeg-(worker|core)\.js|ffmpeg-core\.wasm|member-\d\/(model\.json|weights\.bin))$/;
      expect(paths.filter((p) => !allowed.test(p))).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('clears the previous result before a new file, and shows the thumbnail of what the guard refuses', async () => {
    const { page, recorded } = await openPage();
    try {
      const first = await analyse(page, media.png);
      expect(first!.label).not.toBeNull();
      // A file that is no image: the card of the previous file must be gone, not left under the error.
      const text = join(work, 'notes.txt');
      writeFileSync(text, 'not an image at all');
      const none = await analyse(page, text);
      expect(none).toBeNull();
      expect(await page.isHidden('#result')).toBe(true);
      expect(await page.textContent('#label')).toBe('');
      await expect(page.textContent('#status')).resolves.toMatch(/^notes\.txt: not a supported image/);
      await page.screenshot({ path: join(shots, 'error-after-result.png'), fullPage: true });

      const refused = await analyse(page, media.noise);
      expect(refused).toMatchObject({ kind: 'image', label: null, probabilities: null, guard: { flagged: true } });
      const [cli] = await predictJson([media.noise]);
      expect(cli!.label).toBeNull();
      expect(refused!.guard!.reason).toBe(cli!.guard!.reason);
      expect(await page.textContent('#label')).toBe('no diagnosis');
      // No diagnosis, no set; the previous file's is gone.
      expect(refused!.predictionSet).toBeUndefined();
      expect(await page.isHidden('[data-testid="prediction-set"]')).toBe(true);
      await expect(page.textContent('#guard')).resolves.toBe(`No diagnosis: ${cli!.guard!.reason}.`);
      expect(await page.isHidden('#heatmap-figure')).toBe(true);
      // The thumbnail is the input the guard saw (at the model's input size), not a blank canvas.
      const painted = await page.$eval('#frame-canvas', (c) => {
        const canvas = c as HTMLCanvasElement;
        const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0;
        for (let i = 0; i < data.length; i += 4) sum += data[i]!;
        return { width: canvas.width, mean: sum / (data.length / 4) };
      });
      expect(painted.width).toBe(32);
      expect(painted.mean).toBeGreaterThan(60);
      await page.screenshot({ path: join(shots, 'refused.png'), fullPage: true });
      expect(recorded.errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('refuses damaged member files and never labels from NaN outputs', async () => {
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
    for (const [name, root] of [['damaged', damaged], ['nan', nanExport]] as const) {
      const server = Fastify();
      await server.register(fastifyStatic, { root });
      const address = await server.listen({ port: 0, host: '127.0.0.1' });
      const page = await browser!.newPage({ viewport: { width: 1000, height: 900 } });
      try {
        await page.goto(`${address}/`);
        if (name === 'damaged') {
          await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.startsWith('Model could not be loaded'), undefined, { timeout: 60_000 });
          expect(await page.textContent('#model-info')).toMatch(/^Model could not be loaded: member-1\/weights\.bin: damaged: its sha256 is [0-9a-f]{12}… but pocovid\.json records [0-9a-f]{12}…/);
          expect(await page.getAttribute('body', 'data-ready')).toBeNull();
          await page.screenshot({ path: join(shots, 'damaged-model.png'), fullPage: true });
          continue;
        }
        await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
        expect(await analyse(page, media.png)).toBeNull();
        expect(await page.textContent('#status')).toBe('scan.png: model member-0 gave no usable probabilities for frame 0 (output 0 is NaN): its weights are damaged or diverged; no diagnosis was made');
        expect(await page.isHidden('#result')).toBe(true);
        await page.screenshot({ path: join(shots, 'nan-model.png'), fullPage: true });
      } finally {
        await page.close();
        await server.close();
      }
    }
  });

  it('is served by `pocovid serve` at / together with the model files and the video decoder', async () => {
    // Given as a relative path, as a user types it.
    const server = await createServer({ model: relative(process.cwd(), exported), pageDir });
    try {
      const address = await server.app.listen({ port: 0, host: '127.0.0.1' });
      const index = await fetch(`${address}/`);
      const html = await index.text();
      expect(html).toContain('not a diagnostic device');
      // Cross-origin isolated (the page's worker may then run TF.js wasm on every core), the page's
      // own files and the model's alike.
      for (const path of ['/', '/app.js', '/model-worker.js', '/tfjs-backend-wasm-threaded-simd.wasm', '/favicon.svg', '/pocovid.json', '/member-1/weights.bin']) {
        const res = path === '/' ? index : await fetch(`${address}${path}`);
        expect(res.status, path).toBe(200);
        expect(res.headers.get('cross-origin-opener-policy'), path).toBe('same-origin');
        expect(res.headers.get('cross-origin-embedder-policy'), path).toBe('require-corp');
        expect(res.headers.get('cross-origin-resource-policy'), path).toBe('same-origin');
        if (path !== '/') await res.arrayBuffer();
      }
      expect((await (await fetch(`${address}/pocovid.json`)).json()).members).toEqual(['member-0', 'member-1']);
      const member = await fetch(`${address}/member-0/model.json`);
      expect(member.status).toBe(200);
      expect((await member.json()).format).toBe('layers-model');
      const app = await fetch(`${address}/app.js`);
      expect(app.headers.get('content-type')).toMatch(/javascript/);
      await app.arrayBuffer(); // drained, so the connection is idle and close() is immediate
      const wasm = await fetch(`${address}/ffmpeg-core.wasm`);
      expect(wasm.headers.get('content-type')).toBe('application/wasm');
      await wasm.arrayBuffer();
      const hidden = await fetch(`${address}/../config.json`);
      expect(hidden.status).toBe(404);
      await hidden.arrayBuffer();
    } finally {
      await server.close();
    }
  });
});
