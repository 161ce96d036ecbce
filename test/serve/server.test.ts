import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { rankClasses, type ConformalCalibration } from '../../src/eval/conformal.js';
import { probeWithDemuxer } from '../../src/media/probe.js';
import { resolveLimits } from '../../src/media/limits.js';
import { decodeVideoFrames } from '../../src/media/video.js';
import { saveModelDir } from '../../src/model_dir/model_dir.js';
import { createPipeline } from '../../src/infer/pipeline.js';
import { createServer, type PocovidServer } from '../../src/serve/server.js';
import { writePng, writeVideo } from '../helpers/media_fixtures.js';
import { tinyCfg, tinyModel, TINY_CLASSES } from '../helpers/tiny_model.js';

let work: string;
let server: PocovidServer;
let base: string;
let png: Buffer;

async function upload(data: Uint8Array | string, name: string, query = ''): Promise<{ status: number; body: any }> {
  const form = new FormData();
  form.append('file', new Blob([typeof data === 'string' ? data : new Uint8Array(data)]), name);
  const res = await fetch(`${base}/api/predict${query}`, { method: 'POST', body: form });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  await initEngine();
  work = mkdtempSync(join(tmpdir(), 'pocovid-srv-'));
  // Calibrated so that every image's set holds every class (scores all 1): the answer carries it.
  const conformal: ConformalCalibration = {
    kind: 'pocovid-conformal', version: 1, method: 'aps', lambda: 0, kReg: 0, classes: TINY_CLASSES, coverage: 0.9, calibratedOn: 'validation',
    levels: { frame: { n: 9, scores: new Array<number>(9).fill(1) } },
  };
  await saveModelDir(join(work, 'model'), { name: 'tiny', classes: TINY_CLASSES, cfg: tinyCfg(), members: [tinyModel(1), tinyModel(2)], conformal });
  await writePng(join(work, 'a.png'), 64, 48, 2);
  png = readFileSync(join(work, 'a.png'));
  server = await createServer({ model: join(work, 'model'), maxUploadMb: 0.25, pageDir: join(work, 'no-page') });
  base = await server.app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await server?.close();
});

describe('HTTP API', () => {
  it('answers health and model information', async () => {
    expect(await (await fetch(`${base}/api/health`)).json()).toMatchObject({ status: 'ok', model: 'tiny' });
    expect(await (await fetch(`${base}/api/model`)).json()).toMatchObject({ name: 'tiny', classes: TINY_CLASSES, inputSize: [32, 32], members: 2, formatVersion: 1, runtimes: ['ort'], precision: 'fp32' });
    const missing = await fetch(`${base}/api/nothing`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'not found: GET /api/nothing' });
  });

  it('sends the model files cross-origin isolated (COOP/COEP/CORP), so that the page may run wasm threads', async () => {
    for (const path of ['/pocovid.json', '/member-0/model.json', '/member-0/weights.bin']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('cross-origin-opener-policy'), path).toBe('same-origin');
      expect(res.headers.get('cross-origin-embedder-policy'), path).toBe('require-corp');
      expect(res.headers.get('cross-origin-resource-policy'), path).toBe('same-origin');
      await res.arrayBuffer();
    }
  });

  it('classifies a good image, with a heatmap when asked, and deletes the upload', async () => {
    const { status, body } = await upload(png, 'scan.png', '?heatmap=1');
    expect(status).toBe(200);
    // The shape of one element of predict --json.
    expect(body).toMatchObject({ file: 'scan.png', kind: 'image', format: 'png' });
    expect(TINY_CLASSES).toContain(body.label);
    expect(Object.values(body.probabilities as Record<string, number>).reduce((a, b) => a + b)).toBeCloseTo(1, 5);
    expect(body.uncertainty.ensembleStd).toBeGreaterThan(0);
    expect(body.heatmap).toMatch(/^data:image\/png;base64,/);
    // The prediction set of the decision core, as predict --json gives it.
    const ranked = rankClasses(TINY_CLASSES.map((c) => body.probabilities[c] as number)).map((k) => TINY_CLASSES[k]);
    expect(body.predictionSet).toEqual({ classes: ranked, coverage: 0.9, level: 'frame', decided: false, text: `cannot decide between ${ranked[0]}, ${ranked[1]} and ${ranked[2]}`, calibrationSize: 9 });
    const plain = await upload(png, 'scan.png');
    expect(plain.body.heatmap).toBeUndefined();
    expect(plain.body.probabilities).toEqual(body.probabilities);
    expect(readdirSync(server.workDir).filter((n) => n.startsWith('upload-'))).toEqual([]);
  });

  it('answers with the numbers of an independent forward pass (TF.js, while the server runs ONNX Runtime), and each image its own', async () => {
    // The server's forward pass runs on ONNX Runtime; the reference is the CLI's pipeline on TF.js,
    // another engine, on the same bytes. Two different pictures must get different answers, so a
    // server answering the same thing for everything (or for the wrong input) cannot pass.
    await writePng(join(work, 'b.png'), 64, 48, 5);
    const reference = await createPipeline(join(work, 'model'), { runtime: 'tfjs', guard: false });
    try {
      const answers: Record<string, number>[] = [];
      for (const name of ['a.png', 'b.png']) {
        const { status, body } = await upload(readFileSync(join(work, name)), name);
        expect(status).toBe(200);
        const expected = await reference.predictFile(join(work, name));
        expect(body.label).toBe(expected.label);
        for (const c of TINY_CLASSES) expect(body.probabilities[c]).toBeCloseTo(expected.probabilities![c]!, 5);
        expect(body.uncertainty.ensembleStd).toBeCloseTo(expected.uncertainty!.ensembleStd!, 5);
        answers.push(body.probabilities);
      }
      expect(Math.max(...TINY_CLASSES.map((c) => Math.abs(answers[0]![c]! - answers[1]![c]!)))).toBeGreaterThan(1e-3);
    } finally {
      await reference.dispose();
    }
  });

  it('answers 503 with a JSON error when more requests wait than it queues, and removes those uploads', async () => {
    // maxQueued 0: every request is over the limit, so the refusal is certain (no race with timing).
    const full = await createServer({ model: join(work, 'model'), maxQueued: 0, pageDir: join(work, 'no-page') });
    try {
      const url = await full.app.listen({ port: 0, host: '127.0.0.1' });
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(png)]), 'a.png');
      const res = await fetch(`${url}/api/predict`, { method: 'POST', body: form });
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: 'server busy: too many requests queued' });
      expect(readdirSync(full.workDir).filter((n) => n.startsWith('upload-'))).toEqual([]);
    } finally {
      await full.close();
    }
  });

  it('classifies a video (typed from its bytes, not its name) with a frame timeline', async () => {
    const video = readFileSync(writeVideo(work, 'clip.mp4', 1));
    const { status, body } = await upload(video, 'clip.dat', '?maxFrames=4');
    expect(status).toBe(200);
    expect(body).toMatchObject({ kind: 'video', format: 'mp4', aggregation: 'mean' });
    expect(body.frames).toHaveLength(3);
    expect(body.frames[2].time).toBeCloseTo(2 / 3, 6);
  });

  it('rejects empty, wrong-type, truncated and oversized files with a JSON error', async () => {
    expect(await upload(new Uint8Array(), 'empty.png')).toEqual({ status: 400, body: { error: 'empty.png: the file is empty' } });
    const text = await upload('just some text, not an image', 'notes.png');
    expect(text.status).toBe(415);
    expect(text.body.error).toMatch(/^notes.png: not a supported image/);
    const truncated = await upload(png.subarray(0, 60), 'cut.png');
    expect(truncated.status).toBe(422);
    expect(truncated.body.error).toMatch(/^cut.png: cannot decode png image/);
    expect(truncated.body.error).not.toContain(server.workDir);
    const big = await upload(new Uint8Array(400 * 1024).fill(7), 'big.png');
    expect(big.status).toBe(413);
    expect(big.body.error).toMatch(/limit/);
    const notMultipart = await fetch(`${base}/api/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(notMultipart.status).toBe(415);
    expect(await notMultipart.json()).toHaveProperty('error');
    const badQuery = await upload(png, 'a.png', '?aggregate=median');
    expect(badQuery.status).toBe(400);
  });

  it('never lets a playlist make ffmpeg read a local file', async () => {
    // The "secret" is a FIFO with a writer waiting on it: if anything opens it for reading, the
    // writer completes and leaves a marker file.
    const fifo = join(work, 'secret.ts');
    const marker = join(work, 'secret-was-read');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('/bin/sh', ['-c', `printf x > '${fifo}' && touch '${marker}'`], { stdio: 'ignore' });
    try {
      const playlist = `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:${fifo}\n#EXT-X-ENDLIST\n`;
      for (const name of ['list.m3u8', 'list.mp4']) {
        const { status, body } = await upload(playlist, name);
        expect(status).toBe(415);
        expect(body.error).toMatch(/HLS playlist \(m3u8\) is not accepted/);
      }
      const concat = await upload(`ffconcat version 1.0\nfile ${fifo}\n`, 'list.avi');
      expect(concat.status).toBe(415);
      // Behind the sniffer, the demuxer whitelist and the forced demuxer refuse it too.
      const file = join(work, 'playlist.mp4');
      writeFileSync(file, playlist);
      const asMp4 = { kind: 'video', format: 'mp4', demuxer: 'mov' } as const;
      await expect(decodeVideoFrames(file, { fps: 3, maxFrames: 1, size: 8, type: asMp4 })).rejects.toThrow(/cannot decode/);
      await expect(decodeVideoFrames(file, { fps: 3, maxFrames: 1, size: 8, type: { ...asMp4, demuxer: 'hls' } })).rejects.toThrow(/demuxer "hls" is not allowed/);
      await expect(probeWithDemuxer(file, 'hls', resolveLimits())).rejects.toThrow(/demuxer "hls" is not allowed/);
      // And the data-build path, which sniffs the file itself, refuses it before ffmpeg runs.
      await expect(decodeVideoFrames(file, { fps: 3, maxFrames: 1 })).rejects.toThrow(/playlist\.mp4: not a readable video \(an HLS playlist/);
      await new Promise((r) => setTimeout(r, 200));
      expect(existsSync(marker)).toBe(false);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('answers 50 concurrent requests', async () => {
    const other = await sharp(png).jpeg().toBuffer();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => upload(i % 2 ? png : other, i % 2 ? 'a.png' : 'a.jpg')));
    expect(results.map((r) => r.status)).toEqual(new Array(50).fill(200));
    expect(new Set(results.filter((_, i) => i % 2).map((r) => JSON.stringify(r.body.probabilities))).size).toBe(1);
    expect((await (await fetch(`${base}/api/health`)).json()).queued).toBe(0);
  });

  it('keeps uploads only when asked', async () => {
    const keeping = await createServer({ model: join(work, 'model'), keepUploads: true, pageDir: join(work, 'no-page') });
    try {
      const url = await keeping.app.listen({ port: 0, host: '127.0.0.1' });
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(png)]), 'a.png');
      expect((await fetch(`${url}/api/predict`, { method: 'POST', body: form })).status).toBe(200);
      expect(readdirSync(keeping.workDir).filter((n) => n.startsWith('upload-'))).toHaveLength(1);
      expect((await fetch(`${url}/`)).status).toBe(503);
    } finally {
      await keeping.close();
    }
  });
});
