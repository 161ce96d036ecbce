// Pictures that are not lung ultrasound, made on the spot: blank frames, noise, gradients,
// text screenshots, drawings and checkerboards. Used by the guard's tests and its evaluation,
// next to real photographs when a folder of them is given.
import sharp from 'sharp';
import type { Rng } from '../util/rng.js';

export interface NegativeImage {
  name: string;
  rgb: Uint8Array;
  width: number;
  height: number;
}

function fill(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y);
      const i = (y * width + x) * 3;
      out[i] = r;
      out[i + 1] = g;
      out[i + 2] = b;
    }
  }
  return out;
}

async function svgToRgb(svg: string, width: number, height: number): Promise<Uint8Array> {
  const { data } = await sharp(Buffer.from(svg)).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

function textScreenshotSvg(rng: Rng, width: number, height: number, dark: boolean): string {
  const words = ['Patient', 'report', 'COVID-19', 'ultrasound', 'lung', 'result', 'negative', 'date', 'doctor', 'clinic', 'notes', 'follow-up'];
  const lines: string[] = [];
  for (let i = 0; i < 14; i++) {
    const text = Array.from({ length: 3 + rng.int(5) }, () => words[rng.int(words.length)]).join(' ');
    lines.push(`<text x="12" y="${24 + i * 16}" font-family="DejaVu Sans" font-size="12" fill="${dark ? '#ddd' : '#222'}">${text}</text>`);
  }
  const bg = dark ? '#1e1e1e' : '#ffffff';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="${bg}"/><rect width="100%" height="18" fill="#3b6fb6"/>${lines.join('')}</svg>`;
}

function drawingSvg(rng: Rng, width: number, height: number): string {
  const shapes: string[] = [];
  for (let i = 0; i < 8; i++) {
    const colour = `rgb(${rng.int(256)},${rng.int(256)},${rng.int(256)})`;
    shapes.push(`<circle cx="${rng.int(width)}" cy="${rng.int(height)}" r="${10 + rng.int(40)}" fill="${colour}"/>`);
    shapes.push(`<rect x="${rng.int(width)}" y="${rng.int(height)}" width="${20 + rng.int(60)}" height="${20 + rng.int(60)}" fill="none" stroke="${colour}" stroke-width="3"/>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#f4f1e8"/>${shapes.join('')}</svg>`;
}

/** A fixed, seeded set of synthetic non-ultrasound images (about `perKind` of each kind). */
export async function syntheticNegatives(rng: Rng, perKind = 3, size = 224): Promise<NegativeImage[]> {
  const w = size;
  const h = size;
  const out: NegativeImage[] = [];
  const add = (name: string, rgb: Uint8Array) => out.push({ name, rgb, width: w, height: h });
  for (let k = 0; k < perKind; k++) {
    const grey = rng.int(256);
    add(`blank-grey-${k}`, fill(w, h, () => [grey, grey, grey]));
    add(`noise-uniform-${k}`, fill(w, h, () => {
      const v = rng.int(256);
      return [v, v, v];
    }));
    add(`noise-colour-${k}`, fill(w, h, () => [rng.int(256), rng.int(256), rng.int(256)]));
    const [c0, c1] = [rng.int(256), rng.int(256)];
    add(`gradient-${k}`, fill(w, h, (x, y) => [c0 * (x / w), c1 * (y / h), 128]));
    const cell = 8 + rng.int(24);
    add(`checkerboard-${k}`, fill(w, h, (x, y) => ((Math.floor(x / cell) + Math.floor(y / cell)) % 2 ? [240, 240, 240] : [15, 15, 15])));
    add(`text-light-${k}`, await svgToRgb(textScreenshotSvg(rng, w, h, false), w, h));
    add(`text-dark-${k}`, await svgToRgb(textScreenshotSvg(rng, w, h, true), w, h));
    add(`drawing-${k}`, await svgToRgb(drawingSvg(rng, w, h), w, h));
  }
  add('blank-black', fill(w, h, () => [0, 0, 0]));
  add('blank-white', fill(w, h, () => [255, 255, 255]));
  return out;
}
