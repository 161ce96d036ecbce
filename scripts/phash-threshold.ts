// How far apart the audit's perceptual hash (src/data/phash.ts) puts copies of a frame and frames
// of different patients, on a built dataset: the evidence behind `data audit --max-distance`.
// For every 10th frame: a JPEG re-encode (quality 40), brightness/contrast +15%, a 3% sideways
// shift, a 4% crop on every side, and all of these at once; then the distances between frames of
// different patients (the closest ones, and low percentiles).
//
//   npx tsx scripts/phash-threshold.ts <dataset> [--every 10]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { openDataset } from '../src/data/dataset.js';
import { distanceAt, hammingDistance, HASH_BITS, HASH_WORDS, perceptualHash } from '../src/data/phash.js';

const [dir, flag, value] = process.argv.slice(2);
if (!dir) {
  console.error('usage: npx tsx scripts/phash-threshold.ts <dataset> [--every 10]');
  process.exit(2);
}
const every = flag === '--every' ? Number(value) : 10;
const { rows } = openDataset(dir);

const transforms: [string, (s: sharp.Sharp, w: number, h: number) => sharp.Sharp][] = [
  ['JPEG quality 40', (s) => s.jpeg({ quality: 40 })],
  ['brightness/contrast +15%', (s) => s.linear(1.15, 10)],
  ['3% shift', (s, w, h) => s.extract({ left: Math.round(w * 0.03), top: 0, width: w - Math.round(w * 0.03), height: h }).resize(w, h, { fit: 'fill' })],
  ['4% crop each side', (s, w, h) => s.extract({ left: Math.round(w * 0.04), top: Math.round(h * 0.04), width: w - 2 * Math.round(w * 0.04), height: h - 2 * Math.round(h * 0.04) }).resize(w, h, { fit: 'fill' })],
  ['all at once (2% crop)', (s, w, h) => s.extract({ left: Math.round(w * 0.02), top: Math.round(h * 0.02), width: w - 2 * Math.round(w * 0.02), height: h - 2 * Math.round(h * 0.02) }).resize(w, h, { fit: 'fill' }).linear(1.1, 5).jpeg({ quality: 50 })],
];

const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const hashes = new Uint32Array(rows.length * HASH_WORDS);
for (const [i, r] of rows.entries()) hashes.set(await perceptualHash(readFileSync(join(dir, r.path))), i * HASH_WORDS);

console.log(`${rows.length} frames of ${dir}; hash of ${HASH_BITS} bits\n`);
console.log('copy of a frame             median   p90   p99   max');
for (const [name, transform] of transforms) {
  const distances: number[] = [];
  for (let i = 0; i < rows.length; i += every) {
    const path = join(dir, rows[i]!.path);
    const { width = 0, height = 0 } = await sharp(path).metadata();
    const copy = await transform(sharp(path), width, height).png().toBuffer();
    distances.push(hammingDistance(hashes.subarray(i * HASH_WORDS, (i + 1) * HASH_WORDS), await perceptualHash(copy)));
  }
  distances.sort((a, b) => a - b);
  console.log(`${name.padEnd(26)} ${[0.5, 0.9, 0.99, 1].map((q) => String(percentile(distances, q)).padStart(6)).join('')}`);
}

const across: number[] = [];
const closest: { d: number; a: string; b: string }[] = [];
for (let i = 0; i < rows.length; i++) {
  for (let j = i + 1; j < rows.length; j++) {
    if (rows[i]!.patient === rows[j]!.patient) continue;
    const d = distanceAt(hashes, i, j);
    across.push(d);
    if (d <= 48) closest.push({ d, a: rows[i]!.path, b: rows[j]!.path });
  }
}
across.sort((a, b) => a - b);
console.log(`\nframes of different patients: ${across.length} pairs; smallest ${across.slice(0, 10).join(' ')}; p0.1% ${percentile(across, 0.001)}, p1% ${percentile(across, 0.01)}, median ${percentile(across, 0.5)}`);
for (const c of closest.sort((x, y) => x.d - y.d).slice(0, 10)) console.log(`  ${c.d}  ${c.a}  ${c.b}`);
