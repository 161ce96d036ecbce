// The server's scale-out parts: GET /metrics (Prometheus text from prom-client) counting what the
// server really did, a 503 with a JSON error for an answer over its time limit (a queued job past
// its deadline never runs), and `serve --workers 2`: two processes on one port, both answering,
// /metrics summed over both, a killed worker replaced, SIGTERM draining every worker.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { createServer, type PocovidServer } from '../../src/serve/server.js';
import { startCli, type CliProcess } from '../helpers/cli_process.js';
import { writePng, writeVideo } from '../helpers/media_fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;
let png: Buffer;
let video: Buffer;
const servers: PocovidServer[] = [];
const children: CliProcess[] = [];

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-scale-'));
  await saveModelDir(join(work, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(1), tinyModel(2)] });
  await writePng(join(work, 'a.png'), 64, 48, 2);
  png = readFileSync(join(work, 'a.png'));
  video = readFileSync(writeVideo(work, 'clip.mp4', 1));
});

afterAll(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  for (const s of servers) await s.close();
  rmSync(work, { recursive: true, force: true });
});

async function start(options: Partial<Parameters<typeof createServer>[0]> = {}): Promise<{ server: PocovidServer; url: string }> {
  const server = await createServer({ model: join(work, 'model'), pageDir: join(work, 'no-page'), tmpDir: work, ...options });
  servers.push(server);
  return { server, url: await server.app.listen({ port: 0, host: '127.0.0.1' }) };
}

async function upload(url: string, data: Buffer, name: string, query = ''): Promise<{ status: number; body: any; headers: Headers }> {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(data)]), name);
  const res = await fetch(`${url}/api/predict${query}`, { method: 'POST', body: form });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/** The value of one sample of a Prometheus text exposition, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v) && Object.keys(found).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

/** A GET on a connection of its own (so that the cluster's round robin sees each request). */
function getFresh(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('GET /metrics', () => {
  it('counts requests by route and status, their latency, the frames classified, the queue and the model load time', async () => {
    const { url } = await start();
    expect((await upload(url, png, 'a.png')).status).toBe(200);
    const clip = await upload(url, video, 'clip.mp4', '?maxFrames=4');
    expect(clip.status).toBe(200);
    expect((await upload(url, Buffer.from('not an image'), 'x.png')).status).toBe(415);
    for (let i = 0; i < 3; i++) expect((await fetch(`${url}/api/health`)).status).toBe(200);
    expect((await fetch(`${url}/no/such/path-${Math.random()}`)).status).toBe(404);

    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(sample(text, 'pocovid_http_requests_total', { route: '/api/predict', method: 'POST', status_code: '200' })).toBe(2);
    expect(sample(text, 'pocovid_http_requests_total', { route: '/api/predict', method: 'POST', status_code: '415' })).toBe(1);
    expect(sample(text, 'pocovid_http_requests_total', { route: '/api/health', method: 'GET', status_code: '200' })).toBe(3);
    // An unknown path is counted under one label, not one per URL.
    expect(sample(text, 'pocovid_http_requests_total', { route: 'unmatched', method: 'GET', status_code: '404' })).toBe(1);
    expect(text).not.toContain('path-');
    expect(sample(text, 'pocovid_http_request_duration_seconds_count', { route: '/api/predict', method: 'POST' })).toBe(3);
    expect(sample(text, 'pocovid_http_request_duration_seconds_sum', { route: '/api/predict', method: 'POST' })).toBeGreaterThan(0);
    expect(sample(text, 'pocovid_http_request_duration_seconds_bucket', { route: '/api/predict', method: 'POST', le: '+Inf' })).toBe(3);
    expect(sample(text, 'pocovid_frames_classified_total', { kind: 'image' })).toBe(1);
    expect(sample(text, 'pocovid_frames_classified_total', { kind: 'video' })).toBe(clip.body.frames.length);
    expect(sample(text, 'pocovid_queue_length')).toBe(0);
    // While uploads are being classified, the queue length says so.
    let done = false;
    const inFlight = Promise.all([0, 1, 2].map(() => upload(url, video, 'clip.mp4'))).finally(() => (done = true));
    let most = 0;
    while (!done) {
      most = Math.max(most, sample(await (await fetch(`${url}/metrics`)).text(), 'pocovid_queue_length')!);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect((await inFlight).map((a) => a.status)).toEqual([200, 200, 200]);
    expect(most).toBeGreaterThanOrEqual(1);
    expect(sample(await (await fetch(`${url}/metrics`)).text(), 'pocovid_queue_length')).toBe(0);
    expect(sample(text, 'pocovid_model_load_seconds')).toBeGreaterThan(0);
    expect(sample(text, 'pocovid_process_resident_memory_bytes')).toBeGreaterThan(0);
  });
});

describe('an answer over its time limit', () => {
  it('gets a 503 with a JSON error and Retry-After; jobs still waiting past it never run; the uploads are removed', async () => {
    const { server, url } = await start({ timeouts: { answerMs: 5 } });
    // Decoding a video (an ffmpeg process) takes far longer than 5 ms: the first job runs late, the
    // other two are still waiting when their deadlines pass.
    const answers = await Promise.all([0, 1, 2].map(() => upload(url, video, 'clip.mp4', '?maxFrames=4')));
    for (const answer of answers) {
      expect(answer.status).toBe(503);
      expect(answer.body).toEqual({ error: 'no answer within 0 s of the upload: the server is busy; try again later' });
      expect(answer.headers.get('retry-after')).toBe('1');
    }
    // The job that had started finishes (its result dropped) before the queue is empty.
    for (let i = 0; i < 200 && (await (await fetch(`${url}/api/health`)).json()).queued > 0; i++) await new Promise((r) => setTimeout(r, 50));
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(sample(text, 'pocovid_http_requests_total', { route: '/api/predict', method: 'POST', status_code: '503' })).toBe(3);
    // Only the job that had started was classified (3 frames); the two waiting were skipped.
    expect(sample(text, 'pocovid_frames_classified_total', { kind: 'video' })).toBe(3);
    expect(readdirSync(server.workDir).filter((n) => n.startsWith('upload-'))).toEqual([]);
    expect((await fetch(`${url}/api/health`)).status).toBe(200);
  });
});

describe('serve --workers 2', () => {
  it('serves one port from two processes, sums /metrics over both, replaces a killed worker and drains on SIGTERM', async () => {
    const cli = startCli(['serve', '--model', join(work, 'model'), '--port', '0', '--workers', '2'], { cache: join(work, 'cache'), tmp: work });
    children.push(cli);
    const [, url] = await cli.waitFor(/pocovid serve: (http:\/\/127\.0\.0\.1:\d+)\/ \(2 workers; model "tiny", runtime ort, fp32\)/);
    const healths = await Promise.all(Array.from({ length: 10 }, () => getFresh(`${url}/api/health`)));
    const pids = new Set(healths.map((h) => JSON.parse(h.body).pid as number));
    expect(pids.size).toBe(2);
    expect(pids.has(cli.child.pid!)).toBe(false);
    // Every worker answers /metrics with the sum over both.
    for (let i = 0; i < 2; i++) {
      const text = (await getFresh(`${url}/metrics`)).body;
      expect(sample(text, 'pocovid_http_requests_total', { route: '/api/health', method: 'GET', status_code: '200' })).toBe(10);
    }
    const [one] = [...pids];
    process.kill(one!, 'SIGKILL');
    await cli.waitFor(new RegExp(`worker ${one} stopped \\(killed by SIGKILL\\); starting another`));
    // The other worker went on serving; the replacement joins it.
    let seen = new Set<number>();
    for (let i = 0; i < 100 && seen.size < 2; i++) {
      const h = await getFresh(`${url}/api/health`);
      expect(h.status).toBe(200);
      seen.add(JSON.parse(h.body).pid);
      if (seen.size < 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen.size).toBe(2);
    expect(seen.has(one!)).toBe(false);
    const upload1 = await upload(url!, png, 'a.png');
    expect(upload1.status).toBe(200);

    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    expect(cli.output()).toContain('pocovid serve: SIGTERM: every worker finishes its requests in progress');
    for (const pid of seen) expect(() => process.kill(pid, 0)).toThrow();
    // Every worker's upload folder is gone (the killed one's is swept by its replacement).
    const inProcess = servers.map((s) => basename(s.workDir));
    expect(readdirSync(work).filter((n) => n.startsWith('pocovid-serve-') && !inProcess.includes(n))).toEqual([]);
  }, 120_000);

  it('stops with exit 1 when a worker cannot start, and says why', async () => {
    const cli = startCli(['serve', '--model', join(work, 'no-such-model'), '--port', '0', '--workers', '2'], { cache: join(work, 'cache'), tmp: work });
    children.push(cli);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain(`pocovid: ${join(work, 'no-such-model')}: not a training run`);
    expect(cli.output()).toContain('pocovid serve: a worker stopped before it was ready (exit code 2); stopping');
  }, 120_000);
});
