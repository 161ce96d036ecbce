// Small images and videos made on the fly (tests never need /work/shared).
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { findFfmpeg } from '../../src/media/ffmpeg.js';

/** A deterministic RGB test pattern (gradient + a bright blob whose place depends on `variant`). */
export function pattern(width: number, height: number, variant = 0): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  const cx = ((variant * 17) % width) + 0.5;
  const cy = ((variant * 11 + height / 3) % height) + 0.5;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const blob = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.02 * width * height));
      const v = Math.min(255, Math.round(40 + (150 * y) / height + 200 * blob));
      const i = (y * width + x) * 3;
      rgb[i] = v;
      rgb[i + 1] = Math.round(v * 0.9);
      rgb[i + 2] = Math.round(v * 0.8);
    }
  }
  return rgb;
}

export async function writePng(file: string, width: number, height: number, variant = 0): Promise<void> {
  await sharp(Buffer.from(pattern(width, height, variant)), { raw: { width, height, channels: 3 } }).png().toFile(file);
}

export async function writeJpeg(file: string, width: number, height: number, variant = 0): Promise<void> {
  await sharp(Buffer.from(pattern(width, height, variant)), { raw: { width, height, channels: 3 } }).jpeg({ quality: 95 }).toFile(file);
}

/** A video made with ffmpeg from raw frames: `seconds` long at 6 fps, each frame a new pattern. */
export function writeVideo(dir: string, name: string, seconds: number, size = 48, args: string[] = ['-c:v', 'mpeg4', '-q:v', '3']): string {
  const fps = 6;
  const frames = seconds * fps;
  const raw = new Uint8Array(frames * size * size * 3);
  for (let f = 0; f < frames; f++) raw.set(pattern(size, size, f), f * size * size * 3);
  const rawFile = join(dir, `${name}.rgb`);
  writeFileSync(rawFile, raw);
  const out = join(dir, name);
  try {
    execFileSync(findFfmpeg().ffmpeg, ['-nostdin', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${size}x${size}`, '-r', String(fps), '-i', rawFile, ...args, out]);
  } finally {
    rmSync(rawFile, { force: true });
  }
  return out;
}
