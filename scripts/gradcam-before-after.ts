// One picture of Grad-CAM on the same frames from two models (e.g. trained on the whole frame and
// on the masked sector): a row per explained item, the two maps side by side, each captioned with
// the model's decision. Reads two `pocovid explain maps --method gradcam` folders made on the same files.
//   npx tsx scripts/gradcam-before-after.ts <before explain dir> <after explain dir> <out.png> [before label] [after label]
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import sharp from 'sharp';

const [before, after, out, beforeLabel = 'whole frame', afterLabel = 'sector masked'] = process.argv.slice(2);
if (!before || !after || !out) {
  console.error('usage: npx tsx scripts/gradcam-before-after.ts <before explain dir> <after explain dir> <out.png> [before label] [after label]');
  process.exit(2);
}

interface Item {
  id: string;
  name: string;
  predicted: string;
  probabilities: number[];
  frames: { index: number }[];
}
interface Explanations {
  classes: string[];
  items: Item[];
}
const read = (dir: string) => JSON.parse(readFileSync(join(dir, 'explanations.json'), 'utf8')) as Explanations;
const [a, b] = [read(before), read(after)];
const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const WIDTH = 320;
const CAPTION = 34;
const caption = (lines: [string, string], width: number) =>
  Buffer.from(
    `<svg width="${width}" height="${CAPTION}"><rect width="100%" height="100%" fill="white"/>` +
      lines.map((line, i) => `<text x="4" y="${13 + 15 * i}" font-family="sans-serif" font-size="12">${escape(line)}</text>`).join('') +
      '</svg>',
  );
const decision = (e: Explanations, item: Item) => `${item.predicted} (${e.classes.map((c, k) => `${c} ${item.probabilities[k]!.toFixed(2)}`).join(', ')})`;

const tiles: sharp.OverlayOptions[] = [];
let top = 0;
for (const item of a.items) {
  const other = b.items.find((i) => i.name === item.name);
  if (!other) throw new Error(`${item.name} is explained in ${before} but not in ${after}`);
  const row: { dir: string; e: Explanations; it: Item; label: string }[] = [
    { dir: before, e: a, it: item, label: beforeLabel },
    { dir: after, e: b, it: other, label: afterLabel },
  ];
  let height = 0;
  for (const [col, { dir, e, it, label }] of row.entries()) {
    const file = join(dir, 'maps', it.id, `f${String(it.frames[0]!.index).padStart(3, '0')}_gradcam.png`);
    const map = await sharp(file).resize({ width: WIDTH }).png().toBuffer();
    const { height: h = 0 } = await sharp(map).metadata();
    height = Math.max(height, h);
    tiles.push({ input: caption([`${basename(it.name)} — ${label}`, decision(e, it)], WIDTH), left: col * WIDTH, top });
    tiles.push({ input: map, left: col * WIDTH, top: top + CAPTION });
  }
  top += CAPTION + height + 6;
}
await sharp({ create: { width: 2 * WIDTH, height: top, channels: 3, background: 'white' } }).composite(tiles).png({ compressionLevel: 9, palette: true }).toFile(out);
console.log(`${out}: ${a.items.length} rows`);
