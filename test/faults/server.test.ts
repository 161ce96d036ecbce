// Fault injection against the server: clients that stall (a real socket that stops sending), two
// files in one request, a model that outputs NaN, a stop while clients hang on, and a server killed
// with kill -9 whose uploads the next start must sweep. Each case checks the answer AND that no
// upload is left behind.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine, tf } from '../../src/engine/index.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { createServer, type PocovidServer } from '../../src/serve/server.js';
import { OWNER_FILE, WORK_DIR_PREFIX } from '../../src/serve/work_dir.js';
import { startCli } from '../helpers/cli_process.js';
import { writePng } from '../helpers/media_fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;
let model: string;
let png: Buffer;

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-fault-srv-'));
  model = join(work, 'model');
  await saveModelDir(model, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(1)] });
  await writePng(join(work, 'a.png'), 40, 40, 3);
  png = readFileSync(join(work, 'a.png'));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A private TMPDIR per server, so that the folders it makes and sweeps are this test's alone. */
function tmpFor(name: string): string {
  const dir = join(work, `tmp-${name}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const uploadsIn = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('upload-')) : []);

/** The uploads left in `dir` once the server has had up to `ms` to finish with a cut request. */
async function uploadsAfter(dir: string, ms = 3000): Promise<string[]> {
  for (const started = Date.now(); uploadsIn(dir).length > 0 && Date.now() - started < ms; ) await new Promise((r) => setTimeout(r, 50));
  return uploadsIn(dir);
}
const serverDirsIn = (tmp: string): string[] => readdirSync(tmp).filter((n) => n.startsWith(WORK_DIR_PREFIX));

const BOUNDARY = 'pocovidFaultBoundary';

function multipartHead(name = 'a.png'): string {
  return `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: image/png\r\n\r\n`;
}

/** Opens a raw connection and sends the request line, headers and `body`, then nothing more. */
function stalledUpload(url: string, body: Buffer | string, declaredLength = 1_000_000): { socket: Socket; response: Promise<{ text: string; ms: number }> } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const started = Date.now();
  socket.write(
    `POST /api/predict HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${declaredLength}\r\n\r\n`,
  );
  socket.write(body);
  let text = '';
  socket.on('data', (chunk) => (text += chunk.toString('utf8')));
  const response = new Promise<{ text: string; ms: number }>((resolve) => {
    socket.on('close', () => resolve({ text, ms: Date.now() - started }));
    socket.on('error', () => undefined);
  });
  return { socket, response };
}

async function upload(url: string, files: { name: string; data: Uint8Array }[]): Promise<{ status: number; body: { error?: string; label?: string | null } }> {
  const form = new FormData();
  files.forEach((f, i) => form.append(i === 0 ? 'file' : `file${i}`, new Blob([new Uint8Array(f.data)]), f.name));
  const res = await fetch(`${url}/api/predict`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

describe('a server facing stalled clients', () => {
  let server: PocovidServer;
  let url: string;
  beforeAll(async () => {
    server = await createServer({
      model,
      pageDir: join(work, 'no-page'),
      tmpDir: tmpFor('stall'),
      timeouts: { headersMs: 800, bodyIdleMs: 700, requestMs: 2500 },
    });
    url = await server.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => server.close({ drainMs: 200 }));

  it('answers 408 to an upload that stops in the middle, closes the connection and removes the partial file', async () => {
    const { response } = stalledUpload(url, Buffer.concat([Buffer.from(multipartHead()), png.subarray(0, 200)]));
    const { text, ms } = await response;
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toMatch(/connection: close/i);
    expect(text).toContain('{"error":"upload stalled: no data for 0.7 s"}');
    expect(ms).toBeGreaterThanOrEqual(650);
    expect(ms).toBeLessThan(5000);
    expect(await uploadsAfter(server.workDir)).toEqual([]);
  });

  it('answers 408 to headers that never end', async () => {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    const started = Date.now();
    socket.write(`POST /api/predict HTTP/1.1\r\nHost: ${hostname}\r\nX-Slow: `);
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString('utf8')));
    const ms = await new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toMatch(/"error":"request timed out: headers must arrive within 0\.8 s and a whole upload within 2\.5 s"/);
    expect(ms).toBeLessThan(5000);
  });

  it('cuts an upload that trickles in slower than the request limit allows', async () => {
    const { socket, response } = stalledUpload(url, multipartHead());
    // A byte every 200 ms never trips the 0.7 s idle limit; the 2.5 s request limit ends it.
    const drip = setInterval(() => socket.writable && socket.write(png.subarray(0, 1)), 200);
    try {
      const { text, ms } = await response;
      expect(ms).toBeGreaterThanOrEqual(2400);
      expect(ms).toBeLessThan(8000);
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(text).toContain('"error":"request timed out: headers must arrive within 0.8 s and a whole upload within 2.5 s"');
    } finally {
      clearInterval(drip);
    }
    expect(await uploadsAfter(server.workDir)).toEqual([]);
  });

  it('refuses two files in one request, naming both, and keeps neither', async () => {
    const { status, body } = await upload(url, [
      { name: 'first.png', data: png },
      { name: 'second.png', data: png },
    ]);
    expect(status).toBe(400);
    expect(body.error).toBe('one file per request: "second.png" came after "first.png"; send each file in a request of its own');
    expect(uploadsIn(server.workDir)).toEqual([]);
    // One file still works, on the same server.
    expect((await upload(url, [{ name: 'first.png', data: png }])).status).toBe(200);
  });

  it('refuses a request with more form fields than it allows (8 besides the file) at once with 413 as JSON, keeping no upload', async () => {
    for (const fields of [9, 12, 40]) {
      const form = new FormData();
      for (let i = 0; i < fields; i++) form.append(`note${i}`, 'x');
      form.append('file', new Blob([new Uint8Array(png)]), 'a.png');
      const res = await fetch(`${url}/api/predict`, { method: 'POST', body: form });
      expect(res.status, `${fields} fields`).toBe(413);
      const body = (await res.json()) as { error?: string; label?: string };
      expect(body.error, `${fields} fields`).toBe('too many form fields: at most 8 besides the file');
      expect(body.label).toBeUndefined();
    }
    expect(await uploadsAfter(server.workDir)).toEqual([]);
    // Within the limits (8 fields and the file) it answers.
    const form = new FormData();
    for (let i = 0; i < 8; i++) form.append(`note${i}`, 'x');
    form.append('file', new Blob([new Uint8Array(png)]), 'a.png');
    expect((await fetch(`${url}/api/predict`, { method: 'POST', body: form })).status).toBe(200);
  });
});

describe('a model whose outputs are not finite', () => {
  it('gets no label from the server: 500 with the reason, as JSON', async () => {
    const broken = tinyModel(2);
    const classifier = broken.getLayer('classifier');
    const nan = classifier.getWeights().map((w) => tf.fill(w.shape, Number.NaN));
    classifier.setWeights(nan);
    tf.dispose(nan);
    const dir = join(work, 'nan-model');
    // Saved normally (its digests match): damage that integrity checks cannot see.
    await saveModelDir(dir, { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(1), broken] });
    const server = await createServer({ model: dir, pageDir: join(work, 'no-page'), tmpDir: tmpFor('nan') });
    try {
      const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
      const { status, body } = await upload(url, [{ name: 'a.png', data: png }]);
      expect(status).toBe(500);
      expect(body).toEqual({ error: 'model member-1 gave no usable probabilities for frame 0 (output 0 is NaN): its weights are damaged or diverged; no diagnosis was made' });
      expect(uploadsIn(server.workDir)).toEqual([]);
    } finally {
      await server.close();
    }
  });
});

describe('stopping', () => {
  it('close() cuts a stalled client after the drain deadline and removes the uploads', async () => {
    const tmp = tmpFor('close');
    const server = await createServer({ model, pageDir: join(work, 'no-page'), tmpDir: tmp, timeouts: { bodyIdleMs: 60_000 } });
    const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
    const { response } = stalledUpload(url, Buffer.concat([Buffer.from(multipartHead()), png.subarray(0, 100)]));
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await server.close({ drainMs: 500 });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(5000);
    await response;
    expect(existsSync(server.workDir)).toBe(false);
  });

  it('`pocovid serve` exits within its drain deadline on SIGTERM though a client hangs on, and leaves no upload', async () => {
    const tmp = tmpFor('sigterm');
    const cli = startCli(['serve', '--model', model, '--port', '0', '--drain-timeout', '1'], { cache: join(work, 'cache'), tmp });
    const [, url] = await cli.waitFor(/pocovid serve: (http:\/\/[\d.:]+)\//);
    const { response } = stalledUpload(url!, Buffer.concat([Buffer.from(multipartHead()), png.subarray(0, 100)]));
    await new Promise((r) => setTimeout(r, 300));
    expect(serverDirsIn(tmp)).toHaveLength(1);
    const started = Date.now();
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(6000);
    await response;
    expect(cli.output()).toMatch(/SIGTERM: finishing the requests in progress \(at most 1 s; SIGTERM again to stop at once\)/);
    expect(serverDirsIn(tmp)).toEqual([]);
  });

  it('a second SIGTERM stops it at once, uploads removed', async () => {
    const tmp = tmpFor('sigterm2');
    const cli = startCli(['serve', '--model', model, '--port', '0', '--drain-timeout', '60'], { cache: join(work, 'cache'), tmp });
    const [, url] = await cli.waitFor(/pocovid serve: (http:\/\/[\d.:]+)\//);
    stalledUpload(url!, Buffer.concat([Buffer.from(multipartHead()), png.subarray(0, 100)]));
    await new Promise((r) => setTimeout(r, 300));
    cli.child.kill('SIGTERM');
    await cli.waitFor(/SIGTERM: finishing/);
    const started = Date.now();
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(cli.output()).toContain('SIGTERM again: stopping now');
    expect(serverDirsIn(tmp)).toEqual([]);
  });

  it('after kill -9 the next server sweeps the dead one\'s uploads, and never a live server\'s folder', async () => {
    const tmp = tmpFor('kill9');
    const live = await createServer({ model, pageDir: join(work, 'no-page'), tmpDir: tmp });
    const cli = startCli(['serve', '--model', model, '--port', '0'], { cache: join(work, 'cache'), tmp });
    const [, url] = await cli.waitFor(/pocovid serve: (http:\/\/[\d.:]+)\//);
    const dead = serverDirsIn(tmp).map((n) => join(tmp, n)).find((d) => d !== live.workDir)!;
    expect(JSON.parse(readFileSync(join(dead, OWNER_FILE), 'utf8')).pid).toBe(cli.child.pid);
    // An upload in flight when the process dies: its partial file stays on disk.
    stalledUpload(url!, Buffer.concat([Buffer.from(multipartHead()), png.subarray(0, 100)]));
    for (let i = 0; i < 50 && uploadsIn(dead).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(uploadsIn(dead)).toHaveLength(1);
    cli.child.kill('SIGKILL');
    expect(await cli.exited).toBe('SIGKILL');
    expect(existsSync(dead)).toBe(true);

    const next = await createServer({ model, pageDir: join(work, 'no-page'), tmpDir: tmp });
    try {
      expect(next.swept).toEqual([dead]);
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(live.workDir)).toBe(true);
    } finally {
      await next.close();
      await live.close();
    }
  });
});
