// In-browser inference benchmark: TF.js (wasm, cpu) vs ONNX Runtime Web (wasm) in headless Chromium,
// which decides the page's runtime (docs/browser-runtime.md).
//   npx tsx bench/browser.ts [--models mobilenet_v1,resnet18,grayscale_cnn] [--size 224] [--seconds 4]
//                            [--runtimes tfjs-wasm,tfjs-cpu,ort-wasm] [--rounds 1] [--json out.json]
// Each model (random weights: speed does not depend on them) is saved as a model folder with
// model.onnx beside model.json and served from 127.0.0.1 twice: as plain static files, and with
// COOP/COEP headers (crossOriginIsolated, so SharedArrayBuffer and wasm threads are allowed).
// Every (model, runtime, isolation) runs in a fresh page; bench/browser_page.ts does the timing.
// With --rounds > 1 the configurations run round-robin and the table gives the median round, so a
// burst of load from other processes on a shared machine does not land on one runtime only. The
// last column is the renderer's CPU time per image (all its threads), the steadier figure there.
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { chromium, type CDPSession } from 'playwright-core';
import { initEngine } from '../src/engine/index.js';
import { saveModelDir } from '../src/model_dir/model_dir.js';
import { createModel, disposeBuiltModel } from '../src/models/index.js';
import { exportModelDirOnnx } from '../src/onnx/model_dir.js';
import { writeJsonAtomicSync } from '../src/util/atomic.js';
import type { BenchResult as PageResult } from './browser_page.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'mobilenet_v1,resnet18,grayscale_cnn' },
    size: { type: 'string', default: '224' },
    seconds: { type: 'string', default: '4' },
    runtimes: { type: 'string', default: 'tfjs-wasm,tfjs-cpu,ort-wasm' },
    rounds: { type: 'string', default: '1' },
    json: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];
const WASM_FILES: [string, string][] = [
  ['@tensorflow/tfjs-backend-wasm/dist', 'tfjs-backend-wasm.wasm'],
  ['@tensorflow/tfjs-backend-wasm/dist', 'tfjs-backend-wasm-simd.wasm'],
  ['@tensorflow/tfjs-backend-wasm/dist', 'tfjs-backend-wasm-threaded-simd.wasm'],
  ['onnxruntime-web/dist', 'ort-wasm-simd-threaded.mjs'],
  ['onnxruntime-web/dist', 'ort-wasm-simd-threaded.wasm'],
];
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

/**
 * CPU seconds used so far by all renderer processes (the page's main thread and its wasm worker
 * threads). CPU time per image is far less sensitive than wall time to other processes competing
 * for the cores, which on a shared machine is what makes runtimes comparable.
 */
async function rendererCpuSeconds(cdp: CDPSession): Promise<number> {
  const info = (await cdp.send('SystemInfo.getProcessInfo')) as { processInfo: { type: string; cpuTime: number }[] };
  return info.processInfo.filter((p) => p.type === 'renderer').reduce((sum, p) => sum + p.cpuTime, 0);
}

/** Serves `dir` read-only; with `isolated`, every answer carries the cross-origin-isolation headers. */
function serveStatic(dir: string, isolated: boolean): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dir, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dir + sep)) {
      res.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (body) => {
        const headers: Record<string, string> = { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' };
        if (isolated) Object.assign(headers, { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
        res.writeHead(200, headers).end(body);
      },
      () => res.writeHead(404).end(),
    );
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => {
    const address = server.address() as { port: number };
    done({ server, url: `http://127.0.0.1:${address.port}` });
  }));
}

async function preparePage(dir: string, models: string[], size: number): Promise<void> {
  await build({
    entryPoints: [join(root, 'bench/browser_page.ts')],
    outfile: join(dir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    logLevel: 'warning',
    // ONNX Runtime's wasm glue stays a separate file (ort-wasm-simd-threaded.mjs) so that its
    // pthread workers load that small script, not the whole bundle.
    conditions: ['onnxruntime-web-use-extern-wasm'],
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  for (const [from, name] of WASM_FILES) await copyFile(join(root, 'node_modules', from, name), join(dir, name));
  await writeFile(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>bench</title><script type="module" src="app.js"></script>\n');
  await initEngine();
  for (const name of models) {
    const built = createModel(name, { numClasses: 3, inputSize: [size, size], seed: 1 });
    try {
      await saveModelDir(join(dir, name), { name, classes: ['covid', 'pneumonia', 'regular'], cfg: built.cfg, members: [built.model] });
    } finally {
      disposeBuiltModel(built);
    }
    await exportModelDirOnnx(join(dir, name));
  }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const models = values.models!.split(',');
  const runtimes = values.runtimes!.split(',');
  const size = Number(values.size);
  const seconds = Number(values.seconds);
  const rounds = Math.max(1, Number(values.rounds));
  const dir = await mkdtemp(join(os.tmpdir(), 'pocovid-bench-browser-'));
  const servers: Server[] = [];
  const browser = await chromium.launch({ executablePath: values.chromium, args: CHROMIUM_ARGS });
  try {
    await preparePage(dir, models, size);
    const plain = await serveStatic(dir, false);
    const isolated = await serveStatic(dir, true);
    servers.push(plain.server, isolated.server);
    // The pure-JS cpu backend has no threads: measuring it once (without isolation) is enough.
    const configs = models.flatMap((model) => runtimes.flatMap((runtime) => (runtime === 'tfjs-cpu' ? [plain] : [plain, isolated]).map((server) => ({ model, runtime, server }))));
    const measured = configs.map(() => [] as (PageResult & { cpuMsPerImg: number })[]);
    const cdp = await browser.newBrowserCDPSession();
    const loadStart = os.loadavg()[0]!;
    for (let round = 0; round < rounds; round++) {
      for (const [k, { model, runtime, server }] of configs.entries()) {
        const page = await browser.newPage();
        try {
          await page.goto(`${server.url}/?runtime=${runtime}&model=${model}&seconds=${seconds}`);
          await page.waitForFunction(() => window.__benchStart !== undefined || window.__bench !== undefined, undefined, { timeout: 600_000, polling: 100 });
          const cpuBefore = await rendererCpuSeconds(cdp);
          await page.evaluate(() => window.__benchStart?.());
          await page.waitForFunction(() => window.__bench !== undefined, undefined, { timeout: 600_000, polling: 100 });
          const cpuAfter = await rendererCpuSeconds(cdp);
          const outcome = (await page.evaluate(() => window.__bench))!;
          if (!outcome.result) throw new Error(`${model} on ${runtime}: ${outcome.error}`);
          const result = { ...(outcome.result as PageResult), cpuMsPerImg: (1000 * (cpuAfter - cpuBefore)) / (outcome.result as PageResult).runs };
          measured[k]!.push(result);
          process.stderr.write(`round ${round + 1}/${rounds}: ${model} ${runtime}${server === isolated ? ' (isolated)' : ''} ${result.msPerImg.toFixed(1)} ms/img, ${result.cpuMsPerImg.toFixed(1)} CPU ms/img\n`);
        } finally {
          await page.close();
        }
      }
    }
    const machine = `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} logical cores, load ${loadStart.toFixed(1)}→${os.loadavg()[0]!.toFixed(1)}; Chromium ${browser.version()}`;
    console.log(`# ${machine}; input ${size}×${size}, batch 1, median latency over ≥${seconds} s after 2 warm-up runs; median of ${rounds} round(s) [min–max]\n`);
    console.log('| model | runtime | isolated | threads | load ms | 1st run ms | ms/img | img/s | CPU ms/img |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    const rows = configs.map(({ model, runtime }, k) => {
      const runs = measured[k]!;
      const ms = runs.map((r) => r.msPerImg);
      return {
        model,
        runtime,
        crossOriginIsolated: runs[0]!.crossOriginIsolated,
        threads: runs[0]!.threads,
        loadMs: median(runs.map((r) => r.loadMs)),
        firstRunMs: median(runs.map((r) => r.firstRunMs)),
        msPerImg: median(ms),
        msPerImgRange: [Math.min(...ms), Math.max(...ms)],
        imgPerSec: 1000 / median(ms),
        cpuMsPerImg: median(runs.map((r) => r.cpuMsPerImg)),
        probabilities: runs[0]!.probabilities,
      };
    });
    for (const model of models) {
      const mine = rows.filter((r) => r.model === model);
      for (const r of mine) {
        const range = rounds > 1 ? ` [${r.msPerImgRange[0]!.toFixed(0)}–${r.msPerImgRange[1]!.toFixed(0)}]` : '';
        console.log(`| ${model} | ${r.runtime} | ${r.crossOriginIsolated ? 'yes' : 'no'} | ${r.threads} | ${r.loadMs.toFixed(0)} | ${r.firstRunMs.toFixed(0)} | ${r.msPerImg.toFixed(1)}${range} | ${r.imgPerSec.toFixed(2)} | ${r.cpuMsPerImg.toFixed(1)} |`);
      }
      // Sanity: every runtime computed the same function on the same input.
      const worst = Math.max(...mine.flatMap((r) => r.probabilities.map((p, i) => Math.abs(p - mine[0]!.probabilities[i]!))));
      console.log(`| ${model} | max \\|Δp\\| between runtimes: ${worst.toExponential(1)} |  |  |  |  |  |  |  |`);
    }
    if (values.json) writeJsonAtomicSync(values.json, { machine, size, seconds, rounds, rows });
  } finally {
    await browser.close();
    for (const server of servers) server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
