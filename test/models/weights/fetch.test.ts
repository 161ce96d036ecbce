import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineError, PocovidError } from '../../../src/errors.js';
import { cachePathFor, defaultCacheDir, fetchWeights, sha256File } from '../../../src/models/weights/fetch.js';
import type { WeightSource } from '../../../src/models/types.js';
import { seededValues } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'pocovid-fetch-'));
const payload = new Uint8Array(seededValues(50_000, 3).buffer); // 200 kB, several chunks
const payloadSha = createHash('sha256').update(payload).digest('hex');
let server: Server;
let base = '';
let requests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    if (req.url === '/weights.bin') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(payload.length) });
      res.end(payload);
    } else {
      res.writeHead(404).end('not here');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function source(overrides: Partial<WeightSource> = {}): WeightSource {
  return { url: `${base}/weights.bin`, sha256: payloadSha, fileName: 'weights.bin', licence: 'test', format: 'keras-safetensors', ...overrides };
}

describe('fetchWeights', () => {
  it('downloads with progress, verifies, and then answers from the cache without the network', async () => {
    const cacheDir = join(dir, 'cache1');
    const progress: [number, number | undefined][] = [];
    const path = await fetchWeights(source(), { cacheDir, onProgress: (r, t) => progress.push([r, t]) });
    expect(path).toBe(join(cacheDir, 'weights.bin'));
    expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(payloadSha);
    expect(progress.at(-1)).toEqual([payload.length, payload.length]);
    expect(progress.every(([r], i) => i === 0 || r > progress[i - 1]![0])).toBe(true);
    expect(readdirSync(cacheDir)).toEqual(['weights.bin']); // no .partial left

    const before = requests;
    expect(await fetchWeights(source(), { cacheDir })).toBe(path);
    expect(requests).toBe(before);
  });

  it('downloads again when the cached file has the wrong sha256', async () => {
    const cacheDir = join(dir, 'cache2');
    const path = cachePathFor(source(), cacheDir);
    await fetchWeights(source({ url: `${base}/weights.bin` }), { cacheDir });
    writeFileSync(path, 'corrupted');
    const before = requests;
    await fetchWeights(source(), { cacheDir });
    expect(requests).toBe(before + 1);
    expect(await sha256File(path)).toBe(payloadSha);
  });

  it('rejects a download whose sha256 differs, naming both hashes, and keeps nothing', async () => {
    const cacheDir = join(dir, 'cache3');
    const wrong = '0'.repeat(64);
    const err = await fetchWeights(source({ sha256: wrong }), { cacheDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PocovidError);
    expect((err as Error).message).toContain(`expected ${wrong}, got ${payloadSha}`);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('reports an HTTP error with the URL and where to put the file by hand', async () => {
    const cacheDir = join(dir, 'cache4');
    const err = await fetchWeights(source({ url: `${base}/missing.bin` }), { cacheDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PocovidError);
    expect((err as Error).message).toContain(`${base}/missing.bin answered HTTP 404`);
    expect((err as Error).message).toContain(`copy it to ${join(cacheDir, 'weights.bin')}`);
  });

  it('says offline, with the exact cache path, file name and URL, when the connection is refused', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const cacheDir = join(dir, 'cache5');
    const url = `http://127.0.0.1:${port}/vgg16_notop.h5`;
    const err = await fetchWeights(source({ url, fileName: 'vgg16_notop.h5' }), { cacheDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OfflineError);
    const message = (err as Error).message;
    expect(message).toContain(`cannot download vgg16_notop.h5 from ${url}`);
    expect(message).toContain('ECONNREFUSED');
    expect(message).toContain(`download ${url} (sha256 ${payloadSha}) and copy it to ${join(cacheDir, 'vgg16_notop.h5')}`);
    expect(existsSync(join(cacheDir, 'vgg16_notop.h5.partial'))).toBe(false);
  });

  it('explains where to put a file that has no download URL', async () => {
    const cacheDir = join(dir, 'cache6');
    await expect(fetchWeights(source({ url: '', fileName: 'mobilenet.safetensors' }), { cacheDir })).rejects.toThrow(
      `mobilenet.safetensors has no download URL (it is distributed as a file); copy it to ${join(cacheDir, 'mobilenet.safetensors')}`,
    );
  });

  it('finds the cache folder from POCOVID_CACHE, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(defaultCacheDir({ POCOVID_CACHE: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/pocovid');
    expect(defaultCacheDir({})).toMatch(/\.cache\/pocovid$/);
  });
});
