import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineError } from '../../src/errors.js';
import { dataPathOf, fetchPocusData } from '../../src/data/fetch.js';
import { ZipReader } from '../../src/data/zip.js';
import { makeZip, tempDir } from './helpers.js';

const video = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) % 251));
const archive = makeZip([
  { name: 'covid19_pocus_ultrasound-master/' },
  { name: 'covid19_pocus_ultrasound-master/README.md', data: 'readme' },
  { name: 'covid19_pocus_ultrasound-master/data/' },
  { name: 'covid19_pocus_ultrasound-master/data/dataset_metadata.csv', data: 'Filename,Patient ID / Name\nCov-x,1\n', deflate: true },
  { name: 'covid19_pocus_ultrasound-master/data/pocus_videos/convex/Cov-x.mp4', data: video, deflate: true },
  { name: 'covid19_pocus_ultrasound-master/data/crop.json', data: '{}' },
  { name: 'covid19_pocus_ultrasound-master/pocovidnet/train.py', data: 'print()' },
]);

let server: Server;
let base: string;
let root: string;
let cleanup: () => void;
beforeAll(async () => {
  ({ dir: root, cleanup } = tempDir('fetch'));
  server = createServer((req, res) => {
    if (req.url === '/archive.zip') {
      res.writeHead(302, { location: '/real.zip' }).end();
    } else if (req.url === '/real.zip') {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': archive.length });
      // In two pieces, as a network would.
      res.write(archive.subarray(0, 1000));
      setTimeout(() => res.end(archive.subarray(1000)), 10);
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  cleanup();
});

describe('zip reader', () => {
  it('lists entries and inflates them with CRC checks', () => {
    const file = join(root, 'a.zip');
    writeFileSync(file, archive);
    const zip = ZipReader.open(file);
    try {
      expect(zip.entries.map((e) => e.name)).toContain('covid19_pocus_ultrasound-master/data/crop.json');
      const entry = zip.entries.find((e) => e.name.endsWith('Cov-x.mp4'))!;
      expect(entry.method).toBe(8);
      expect(zip.read(entry).equals(video)).toBe(true);
    } finally {
      zip.close();
    }
    // One flipped byte inside the stored crop.json data fails the CRC check.
    const reader = ZipReader.open(file);
    const crop = reader.entries.find((e) => e.name.endsWith('data/crop.json'))!;
    reader.close();
    const broken = Buffer.from(archive);
    broken[crop.localHeaderOffset + 30 + Buffer.byteLength(crop.name) + 1] ^= 0xff;
    writeFileSync(join(root, 'broken.zip'), broken);
    const bad = ZipReader.open(join(root, 'broken.zip'));
    try {
      expect(() => bad.read(bad.entries.find((e) => e.name === crop.name)!)).toThrow(/broken\.zip: .*crop\.json: CRC-32 mismatch/);
    } finally {
      bad.close();
    }
    writeFileSync(join(root, 'not.zip'), 'hello');
    expect(() => ZipReader.open(join(root, 'not.zip'))).toThrow(/not\.zip: not a zip archive/);
  });

  it('maps archive names to data/ paths', () => {
    expect(dataPathOf('repo-master/data/pocus_videos/convex/a.mp4')).toBe('pocus_videos/convex/a.mp4');
    expect(dataPathOf('data/crop.json')).toBe('crop.json');
    expect(dataPathOf('repo-master/pocovidnet/data/x')).toBeUndefined();
    expect(dataPathOf('repo-master/README.md')).toBeUndefined();
  });
});

describe('fetchPocusData', () => {
  it('downloads over HTTP (following a redirect) and extracts only data/', async () => {
    const out = join(root, 'pocus');
    const result = await fetchPocusData({ out, url: `${base}/archive.zip`, quiet: true });
    expect(result.files).toBe(3);
    expect(readFileSync(join(out, 'pocus_videos/convex/Cov-x.mp4')).equals(video)).toBe(true);
    expect(readFileSync(join(out, 'crop.json'), 'utf8')).toBe('{}');
    expect(existsSync(join(out, 'README.md'))).toBe(false);
    expect(existsSync(join(out, 'pocovidnet'))).toBe(false);
    // Neither the archive nor any partial file is left behind.
    expect(readdirSync(out).sort()).toEqual(['crop.json', 'dataset_metadata.csv', 'pocus_videos']);
  });

  it('takes a local archive instead of downloading', async () => {
    const file = join(root, 'local.zip');
    writeFileSync(file, archive);
    const result = await fetchPocusData({ out: join(root, 'local'), archive: file, quiet: true });
    expect(result.files).toBe(3);
  });

  it('fails offline with a message that says how to use a local copy', async () => {
    // A port nobody listens on: connection refused, as without network.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const attempt = fetchPocusData({ out: join(root, 'offline'), url: `http://127.0.0.1:${port}/x.zip`, quiet: true });
    await expect(attempt).rejects.toBeInstanceOf(OfflineError);
    await expect(fetchPocusData({ out: join(root, 'offline'), url: `http://127.0.0.1:${port}/x.zip`, quiet: true })).rejects.toThrow(/ECONNREFUSED.*pocovid data build --source <dir>/s);
  });

  it('reports HTTP errors and archives without data/', async () => {
    await expect(fetchPocusData({ out: join(root, 'e1'), url: `${base}/nope.zip`, quiet: true })).rejects.toThrow(/HTTP 404/);
    const file = join(root, 'nodata.zip');
    writeFileSync(file, makeZip([{ name: 'repo/README.md', data: 'x' }]));
    await expect(fetchPocusData({ out: join(root, 'e2'), archive: file, quiet: true })).rejects.toThrow(/nodata\.zip: no data\/ folder inside/);
    writeFileSync(join(root, 'evil.zip'), makeZip([{ name: 'repo/data/../../evil.txt', data: 'x' }]));
    await expect(fetchPocusData({ out: join(root, 'e3'), archive: join(root, 'evil.zip'), quiet: true })).rejects.toThrow(/outside the output folder/);
  });
});
