// Real-looking synthetic inputs for end-to-end tests: phantom lung-ultrasound frames
// (src/data/phantom.ts) written as a PNG, a GIF, an H.264 MP4 and an MJPEG AVI.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { renderPhantomFrame, samplePhantomScene, type PhantomClass, type PhantomSite } from '../../src/data/phantom.js';
import { encodeVideo, findFfmpeg } from '../../src/media/ffmpeg.js';
import { createRng } from '../../src/util/rng.js';

/** `count` frames of one phantom scene (motion only between them), side×side RGB, seen at `site`. */
export function phantomFrames(label: PhantomClass, side: number, count: number, seed: number, site?: PhantomSite): Uint8Array[] {
  const rng = createRng(seed);
  const scene = samplePhantomScene(label, side, rng, site);
  return Array.from({ length: count }, (_, t) => renderPhantomFrame(scene, t, rng));
}

export async function writePhantomPng(file: string, label: PhantomClass, side: number, seed: number, site?: PhantomSite): Promise<string> {
  const [frame] = phantomFrames(label, side, 1, seed, site);
  await sharp(Buffer.from(frame!), { raw: { width: side, height: side, channels: 3 } }).png().toFile(file);
  return file;
}

/** H.264 in MP4 (libx264, yuv420p): what a phone or a recent ultrasound machine exports. */
export function writePhantomH264(file: string, label: PhantomClass, side: number, count: number, fps: number, seed: number): string {
  const raw = `${file}.rgb`;
  writeFileSync(raw, Buffer.concat(phantomFrames(label, side, count, seed)));
  execFileSync(findFfmpeg().ffmpeg, ['-nostdin', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${side}x${side}`, '-r', String(fps), '-i', raw,
    '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-f', 'mp4', file]);
  return file;
}

/** A GIF or an MJPEG AVI through the phantom's own encoder (src/media/ffmpeg.ts encodeVideo). */
export async function writePhantomVideo(file: string, label: PhantomClass, side: number, count: number, fps: number, seed: number): Promise<string> {
  await encodeVideo(file, phantomFrames(label, side, count, seed), side, side, fps);
  return file;
}
