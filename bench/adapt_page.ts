// "Adapt to my data" in headless Chromium, timed as a user meets it:
//   npx tsx bench/adapt_page.ts --model <exported folder> [--frames <folder>] [--count 100]
//       [--mode head|new-layer] [--epochs N] [--lr R] [--threads N] [--json]
// prints {"frames", "addSeconds", "adaptSeconds", "trainFrames", "heldOutFrames", "before", "after", "mode", "members"}:
//   addSeconds    from choosing the folder to every frame waiting in the model worker (decode,
//                 the one resize, the guard, the sector, the input)
//   adaptSeconds  the adaptation itself (the worker's own clock: features of every frame by every
//                 member, training, scoring before and after, recalibration)
//   before/after  held-back frame accuracy and balanced accuracy
// --frames: a folder in the layout the panel reads (<class>/<patient>/<images>), of which the first
// --count images (sorted by path, spread over the classes) are used; --dataset D [--fold K]: such a
// folder made from a dataset's test fold K (`data build`): a folder per source video under its class,
// with frames spread over each source's length, about --count / classes per class; without either, phantom frames
// (src/data/phantom.ts) of another probe geometry and gain, at the model's input size, one patient
// folder per scene. The model folder gets a freshly built page (its own may be older), served from
// 127.0.0.1 with the COOP/COEP headers `pocovid serve` sends, so TF.js runs on every core.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import fastifyStatic from '@fastify/static';
import Fastify from 'fastify';
// @ts-expect-error plain ESM build script without types
import { buildPage } from '../scripts/build-page.mjs';
import { openDataset } from '../src/data/dataset.js';
import { PHANTOM_CLASSES } from '../src/data/phantom.js';
import type { ManifestRow } from '../src/data/types.js';
import { readModelMeta } from '../src/model_dir/model_dir.js';
import { ISOLATION_HEADERS } from '../src/serve/page_dir.js';
import { launchChromium } from '../test/helpers/browser.js';
import { writePhantomPng } from '../test/helpers/phantom_media.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    frames: { type: 'string' },
    dataset: { type: 'string' },
    fold: { type: 'string', default: '0' },
    count: { type: 'string', default: '100' },
    mode: { type: 'string', default: 'head' },
    epochs: { type: 'string' },
    lr: { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
if (!values.model) throw new Error('usage: npx tsx bench/adapt_page.ts --model <exported folder> [--frames <folder>] [--count 100] [--mode head|new-layer] [--epochs N] [--lr R] [--threads N] [--json]');
const modelDir = resolve(values.model);
const meta = readModelMeta(modelDir);
const count = Number(values.count);

/** Image files under `dir`, by path. */
function imagesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...imagesUnder(path));
    else if (/\.(png|jpe?g|webp)$/i.test(name)) out.push(path);
  }
  return out;
}

const work = mkdtempSync(join(tmpdir(), 'pocovid-bench-adapt-'));
try {
  const pageDir = await buildPage(join(work, 'page'));
  // The site folder the panel is given: <class>/<patient>/<image>.
  const site = join(work, 'site');
  if (values.dataset) {
    // A dataset's test fold as a site's folder: <class>/<source>/<frame>.png.
    const from = join(work, 'from-dataset');
    const dataset = openDataset(resolve(values.dataset));
    const fold = Number(values.fold);
    const bySource = new Map<string, ManifestRow[]>();
    for (const row of dataset.rows.filter((r) => r.fold === fold && meta.classes.includes(r.label))) bySource.set(row.source, [...(bySource.get(row.source) ?? []), row]);
    for (const cls of meta.classes) {
      const sources = [...bySource.values()].filter((rows) => rows[0]!.label === cls);
      const perSource = Math.max(1, Math.ceil(count / meta.classes.length / Math.max(1, sources.length)));
      for (const rows of sources) {
        const take = Math.min(perSource, rows.length);
        for (let j = 0; j < take; j++) {
          const row = rows[Math.floor((j * rows.length) / take)]!;
          const dir = join(from, cls, basename(row.source).replace(/[^A-Za-z0-9_.-]/g, '_'));
          mkdirSync(dir, { recursive: true });
          cpSync(join(dataset.dir, row.path), join(dir, basename(row.path)));
        }
      }
    }
    // Then as a --frames folder: the first --count of it.
    values.frames = from;
  }
  if (values.frames) {
    const root = resolve(values.frames);
    const byClass = new Map(meta.classes.map((c) => [c, imagesUnder(join(root, c)).length ? imagesUnder(join(root, c)) : []]));
    let left = count;
    for (const [k, cls] of meta.classes.entries()) {
      const take = Math.round(left / (meta.classes.length - k));
      for (const file of byClass.get(cls)!.slice(0, take)) {
        const to = join(site, relative(root, file));
        mkdirSync(join(to, '..'), { recursive: true });
        cpSync(file, to);
        left--;
      }
    }
  } else if (!values.frames) {
    const side = meta.cfg.inputSize[0];
    const siteB = { gain: 1.7, sectorDegrees: 16, apex: 1.2 };
    for (let i = 0; i < count; i++) {
      const label = PHANTOM_CLASSES[i % PHANTOM_CLASSES.length]!;
      const dir = join(site, label, `scene-${i}`);
      mkdirSync(dir, { recursive: true });
      await writePhantomPng(join(dir, 'frame.png'), label, side, 7000 + i, siteB);
    }
  }
  const frames = imagesUnder(site).length;

  const server = Fastify();
  await server.register(fastifyStatic, {
    root: [pageDir, modelDir],
    setHeaders: (res) => {
      for (const [name, value] of Object.entries(ISOLATION_HEADERS)) res.setHeader(name, value);
    },
  });
  const address = await server.listen({ port: 0, host: '127.0.0.1' });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${address}/${values.threads ? `?threads=${Number(values.threads)}` : ''}`);
    await page.waitForSelector('body[data-ready="true"], #model-info:text-matches("could not be loaded")', { timeout: 600_000 });
    if ((await page.getAttribute('body', 'data-ready')) !== 'true') throw new Error(`${modelDir}: ${await page.textContent('#model-info')}`);
    const modelInfo = await page.textContent('#model-info');
    await page.selectOption('#adapt-mode', values.mode!);
    if (values.epochs) await page.fill('#adapt-epochs', values.epochs);
    if (values.lr) await page.fill('#adapt-lr', values.lr);
    const started = Date.now();
    await page.setInputFiles('#adapt-folder', site);
    await page.waitForFunction(() => !/reading/.test(document.getElementById('adapt-rows')!.textContent!), undefined, { timeout: 1_200_000 });
    const addSeconds = (Date.now() - started) / 1000;
    const problems = await page.$$eval('#adapt-rows td.error', (cells) => cells.map((c) => c.textContent));
    if (problems.length > 0) console.error(`left out: ${problems.join('; ')}`);
    await page.click('[data-testid="adapt-run"]');
    await page.waitForSelector('body[data-adapt="done"], body[data-adapt="error"]', { timeout: 1_200_000 });
    if ((await page.getAttribute('body', 'data-adapt')) !== 'done') throw new Error(`the adaptation failed: ${await page.textContent('#adapt-status')}`);
    const result = JSON.parse((await page.textContent('[data-testid="adapt-result"]'))!);
    const out = {
      frames,
      addSeconds: round(addSeconds, 1),
      adaptSeconds: round(result.seconds, 1),
      trainFrames: result.trainFrames,
      heldOutFrames: result.heldOutFrames,
      before: { accuracy: round(result.before.accuracy, 3), balancedAccuracy: round(result.before.balancedAccuracy, 3) },
      after: { accuracy: round(result.after.accuracy, 3), balancedAccuracy: round(result.after.balancedAccuracy, 3) },
      mode: result.settings.mode,
      epochs: result.settings.epochs,
      lr: result.settings.lr,
      members: meta.members.length,
    };
    if (values.json) console.log(JSON.stringify(out));
    else {
      console.log(modelInfo);
      console.log(`${frames} frames: added in ${out.addSeconds} s, adapted (${out.mode}, ${out.epochs} epochs) in ${out.adaptSeconds} s`);
      console.log(`held back ${out.heldOutFrames} frames: accuracy ${out.before.accuracy} → ${out.after.accuracy}, balanced ${out.before.balancedAccuracy} → ${out.after.balancedAccuracy}`);
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
