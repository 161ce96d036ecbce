// report.html: made from report.md (so no table can differ), self-contained, and readable offline:
// a tiny trained run's report opened from the file system in headless Chromium shows every table,
// every plot, the worst errors with their thumbnails and Grad-CAM, and a working gallery link.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, haveChromium, launchChromium } from '../helpers/browser.js';
import { initEngine } from '../../src/engine/index.js';
import { readPredictionsCsv } from '../../src/eval/csv.js';
import { markdownToHtml, reportHtmlPage } from '../../src/eval/markdown_html.js';
import { evaluateRun } from '../../src/eval/report.js';
import { worstErrors } from '../../src/eval/worst_errors.js';
import { explain } from '../../src/explain/explain_run.js';
import { trainFold } from '../../src/train/train_fold.js';
import { describeNeeding } from '../helpers/prerequisites.js';
import { writeTinyDataset } from '../helpers/tiny_dataset.js';


describe('markdownToHtml', () => {
  it('turns the report subset into HTML: headings with ids, aligned tables, lists, images, emphasis', () => {
    const html = markdownToHtml(
      ['# Title', '', 'Some **bold** and _italic_ text with `code`.', '', '| Name | Value |', '|---|---:|', '| a | 1.000 |', '| b \\| c | ![x](plots/x.png) |', '', '- one', '- [two](sub/index.html)', '', '![roc](plots/roc.png)', '![pr](plots/pr.png)'].join('\n'),
    );
    expect(html).toContain('<h1 id="title">Title</h1>');
    expect(html).toContain('<strong>bold</strong> and <em>italic</em> text with <code>code</code>.');
    expect(html).toContain('<th class="txt">Name</th><th class="num">Value</th>');
    // Right-aligned columns keep text (a name, a picture) left-aligned in the page; figures go right.
    expect(html).toContain('<td class="txt">a</td><td class="num">1.000</td>');
    expect(html).toContain('<td class="txt">b | c</td><td class="txt"><img src="plots/x.png" alt="x" loading="lazy"></td>');
    expect(html).toContain('<ul><li>one</li><li><a href="sub/index.html">two</a></li></ul>');
    expect(html).toContain('<div class="figures"><img src="plots/roc.png" alt="roc" loading="lazy"><img src="plots/pr.png" alt="pr" loading="lazy"></div>');
  });

  it('escapes text and refuses script links, so a file name cannot run code in the report', () => {
    const html = reportHtmlPage('# <script>alert(1)</script>\n\n[x](javascript:alert(1)) ![y](data:text/html,hi) a_b_c', 'T <b>');
    expect(html).not.toMatch(/<script>/);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('<a href="#">x</a>');
    expect(html).toContain('<img src="#" alt="y"');
    expect(html).toContain('a_b_c');
    expect(html).toContain('<title>T &lt;b&gt;</title>');
  });
});

describe('worstErrors', () => {
  it('lists the most confidently wrong frame of each source, most confident first', () => {
    const classes = ['a', 'b'];
    const row = (path: string, source: string, label: string, p: number) => ({ path, source, patient: 'x', fold: 0, label, predicted: p >= 0.5 ? 'a' : 'b', probs: [p, 1 - p] });
    const errors = worstErrors([row('1', 's1', 'b', 0.7), row('2', 's1', 'b', 0.9), row('3', 's2', 'b', 0.8), row('4', 's3', 'a', 0.9), row('5', 's4', 'a', 0.45)], classes, 2);
    expect(errors.map((e) => [e.path, e.confidence])).toEqual([['2', 0.9], ['3', 0.8]]);
    expect(errors[0]!.trueProbability).toBeCloseTo(0.1, 12);
  });
});

describeNeeding({ what: `Chromium at ${CHROMIUM}`, available: haveChromium }, 'report.html of a trained run', () => {
  let root: string;
  let run: string;
  let browser: Browser;

  beforeAll(async () => {
    await initEngine();
    root = mkdtempSync(join(tmpdir(), 'pocovid-report-html-'));
    process.env.POCOVID_CACHE = join(root, 'cache');
    const data = join(root, 'data');
    await writeTinyDataset(data, { patientsPerClass: 6, framesPerVideo: 3, folds: 3, size: 40 });
    run = join(root, 'run');
    // A deliberately under-trained model, so there are errors to show.
    await trainFold({ data, out: run, fold: 0, model: 'grayscale_cnn', inputSize: [32, 32], batchSize: 8, seed: 1, dropout: 0, epochs: 1 }, { quiet: true });
    await explain({ run, methods: ['gradcam'], out: join(run, 'explain'), mcPasses: 0, limit: 1, runtime: 'tfjs' });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('opens from the file system with every table, plot and error picture loaded and nothing fetched from elsewhere', async () => {
    const { written } = await evaluateRun(run, { worstErrors: 4 });
    expect(written.reportHtml).toBe(join(run, 'report.html'));
    const md = readFileSync(written.reportMd, 'utf8');
    const predictions = readPredictionsCsv(join(run, 'predictions.csv')).rows;
    const wrong = new Set(predictions.filter((r) => r.label !== r.predicted).map((r) => r.source)).size;
    expect(wrong).toBeGreaterThan(0);
    const shown = Math.min(4, wrong);
    for (let k = 1; k <= shown; k++) {
      for (const kind of ['frame', 'gradcam']) expect(existsSync(join(run, 'report_files', `error-0${k}-${kind}.png`)), `${k} ${kind}`).toBe(true);
    }

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(written.reportHtml).href);
    await page.waitForLoadState('load');
    // Lazy images load when scrolled to: load them all.
    await page.evaluate(async () => {
      for (const img of Array.from(document.images)) {
        img.loading = 'eager';
        if (!img.complete) await new Promise((done) => img.addEventListener('load', done, { once: true }) ?? img.addEventListener('error', done, { once: true }));
      }
    });
    const state = await page.evaluate(() => ({
      tables: document.querySelectorAll('table').length,
      headings: Array.from(document.querySelectorAll('h2')).map((h) => h.textContent),
      images: Array.from(document.images).map((img) => ({ src: img.getAttribute('src'), ok: img.complete && img.naturalWidth > 0 })),
      gallery: Array.from(document.querySelectorAll('a')).map((a) => a.getAttribute('href')).filter((h) => h?.endsWith('index.html')),
      errorRows: document.querySelectorAll('#worst-errors ~ .table tbody tr').length,
    }));
    await page.screenshot({ path: join(root, 'report.png'), fullPage: true });
    writeFileSync(join(tmpdir(), 'pocovid-report-html.png'), readFileSync(join(root, 'report.png')));

    // Every Markdown table is a table in the page (the separator rows count them).
    expect(state.tables).toBe(md.split('\n').filter((l) => /^\| ---/.test(l)).length);
    for (const heading of ['Frame level', 'Per fold', 'Patient level (exams)', 'Prediction sets (split conformal)', 'Worst errors', 'Explanation galleries', 'Definitions']) {
      expect(state.headings.some((h) => h?.startsWith(heading)), heading).toBe(true);
    }
    const broken = state.images.filter((i) => !i.ok);
    expect(broken).toEqual([]);
    for (const name of ['frame-roc', 'video-confusion-counts', 'history-run']) expect(state.images.some((i) => i.src === `plots/${name}.png`), name).toBe(true);
    expect(state.images.filter((i) => i.src?.startsWith('report_files/error-')).length).toBe(2 * shown);
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);

    // The gallery link opens the explain gallery.
    expect(state.gallery).toEqual(['explain/index.html']);
    await page.goto(new URL('explain/index.html', pathToFileURL(written.reportHtml)).href);
    expect(await page.title()).toMatch(/./);
    await page.close();
  });
});
