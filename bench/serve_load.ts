// HTTP load benchmark of `pocovid serve` with 1 and 2 worker processes: autocannon posts one image
// to POST /api/predict on 127.0.0.1, bounded in requests and time, and reports images/s, p50/p99
// latency and errors (README "Scaling out").
//   npx tsx bench/serve_load.ts [--model DIR] [--workers 1,2] [--amount 200] [--seconds 60]
//                               [--connections 4] [--image FILE] [--json out.json]
// Without --model, a model folder of mobilenet_v1 at 224×224 with random weights is made (speed does
// not depend on the weights) and exported to ONNX, as `pocovid export` does. The image is a
// generated 224×224 PNG unless --image is given. Each server is started through bin/pocovid.js
// (dist/: `npm run build` first), warmed up with a few requests, measured, then stopped by SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { initEngine } from '../src/engine/index.js';
import { saveModelDir } from '../src/model_dir/model_dir.js';
import { createModel, disposeBuiltModel } from '../src/models/index.js';
import { exportModelDirOnnx } from '../src/onnx/model_dir.js';
import { writeJsonAtomicSync } from '../src/util/atomic.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    workers: { type: 'string', default: '1,2' },
    amount: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '60' },
    connections: { type: 'string', default: '4' },
    image: { type: 'string' },
    json: { type: 'string' },
  },
});

const BIN = join(fileURLToPath(new URL('..', import.meta.url)), 'bin', 'pocovid.js');

async function makeModel(dir: string): Promise<string> {
  await initEngine();
  const built = createModel('mobilenet_v1', { numClasses: 3, inputSize: [224, 224], seed: 1 });
  try {
    await saveModelDir(dir, { name: 'mobilenet_v1', classes: ['covid', 'pneumonia', 'regular'], cfg: built.cfg, members: [built.model] });
  } finally {
    disposeBuiltModel(built);
  }
  await exportModelDirOnnx(dir);
  return dir;
}

async function image(): Promise<Buffer> {
  if (values.image) return readFile(values.image);
  const pixels = Buffer.alloc(224 * 224 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + ((i / 672) | 0) * 11) & 255;
  return sharp(pixels, { raw: { width: 224, height: 224, channels: 3 } }).png().toBuffer();
}

function multipart(file: Buffer, boundary: string): Buffer {
  return Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.png"\r\nContent-Type: image/png\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

/** Starts `pocovid serve --workers n` on a free port; resolves with its URL and a stop function. */
function startServer(model: string, workers: number, tmp: string): Promise<{ url: string; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--model', model, '--port', '0', '--workers', String(workers)], { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const m = /pocovid serve: (http:\/\/[\d.:]+)\//.exec(output);
      if (m) {
        child.stdout!.off('data', onData);
        resolve({
          url: m[1]!,
          stop: () =>
            new Promise((done) => {
              child.once('close', (code) => done(code));
              child.kill('SIGTERM');
            }),
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('close', (code) => reject(new Error(`server exited (${code}) before it listened:\n${output}`)));
  });
}

interface Row {
  workers: number;
  requests: number;
  imagesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  seconds: number;
}

const tmp = await mkdtemp(join(os.tmpdir(), 'pocovid-serve-load-'));
try {
  const model = values.model ?? (await makeModel(join(tmp, 'model')));
  const boundary = 'pocovid-bench-boundary';
  const body = multipart(await image(), boundary);
  const rows: Row[] = [];
  for (const workers of values.workers.split(',').map(Number)) {
    const server = await startServer(model, workers, tmp);
    try {
      const request = { method: 'POST' as const, path: '/api/predict', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body };
      // Warm-up: each worker loads its ORT sessions' caches on first use.
      await autocannon({ url: server.url, connections: workers, amount: 4 * workers, requests: [request] });
      const started = performance.now();
      const result = await autocannon({ url: server.url, connections: Number(values.connections), amount: Number(values.amount), duration: Number(values.seconds), requests: [request] });
      // autocannon's own duration is counted in whole ticks; the wall clock is finer.
      const seconds = (performance.now() - started) / 1000;
      rows.push({
        workers,
        requests: result.requests.total,
        imagesPerSec: result.requests.total / seconds,
        p50Ms: result.latency.p50,
        p99Ms: result.latency.p99,
        errors: result.errors + result.timeouts,
        non2xx: result.non2xx,
        seconds,
      });
    } finally {
      await server.stop();
    }
  }
  console.log(`pocovid serve load test: ${values.connections} connections, at most ${values.amount} requests or ${values.seconds} s; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), load average ${os.loadavg()[0]!.toFixed(1)} at the end`);
  console.log('| workers | requests | images/s | p50 (ms) | p99 (ms) | errors | non-2xx |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.workers} | ${r.requests} | ${r.imagesPerSec.toFixed(1)} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors} | ${r.non2xx} |`);
  if (values.json) writeJsonAtomicSync(values.json, { rows, connections: Number(values.connections), cpus: os.cpus().length, loadAverage: os.loadavg() });
} finally {
  await rm(tmp, { recursive: true, force: true });
}
