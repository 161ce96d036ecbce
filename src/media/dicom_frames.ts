// A DICOM file → sampled, cropped, resized RGB frames: the DICOM counterpart of
// decodeVideoFrames (video.ts), with the same options and the same sampling rule (every k-th
// native frame from the first of the range, k = samplingStep(native fps, fps), at most
// maxFrames), so a cine loop is sampled at training time and at prediction time exactly as a
// video of the same rate would be. The native rate comes from the DICOM timing tags (dicom.ts).
import { stat, readFile } from 'node:fs/promises';
import { BadInputError, PocovidError } from '../errors.js';
import { resizeRgb } from '../data/image.js';
import { openDicom, type DicomClip, type DicomLimits, type FrameRateSource } from './dicom.js';
import { samplingStep, type DecodedFrame, type DecodeOptions } from './video.js';

/** Largest DICOM file read into memory. */
const MAX_FILE_BYTES = 2 * 1024 ** 3;

export interface DicomInfo {
  format: 'dicom';
  width: number;
  height: number;
  frameCount: number;
  fps: number;
  fpsSource: FrameRateSource;
  transferSyntax: string;
  photometric: string;
  burnedInAnnotation: boolean;
  /** Salted hash of the Patient ID, when a hash function was given and the file has one. */
  patient?: string;
}

export interface DicomDecodeOptions extends Omit<DecodeOptions, 'type'> {
  /** Salted one-way function for the Patient ID (see DicomClip.pseudonym); without it no patient is read. */
  pseudonymize?: (issuerAndId: string) => string;
}

/** Reads a DICOM file (a regular file, at most 2 GiB) into memory. */
export async function readDicomBytes(file: string): Promise<Uint8Array> {
  let size: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new BadInputError(file, 'not a regular file');
    size = info.size;
  } catch (err) {
    if (err instanceof BadInputError) throw err;
    throw new BadInputError(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  if (size > MAX_FILE_BYTES) throw new BadInputError(file, `DICOM file of ${size} bytes is over the ${MAX_FILE_BYTES}-byte limit`);
  return new Uint8Array(await readFile(file));
}

function cropRgb(rgb: Uint8Array, width: number, x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let row = 0; row < h; row++) out.set(rgb.subarray(((y + row) * width + x) * 3, ((y + row) * width + x + w) * 3), row * w * 3);
  return out;
}

/** The native frame numbers kept: every k-th from the first of the range, at most maxFrames. */
export function dicomFrameIndices(clip: Pick<DicomClip, 'frameCount' | 'fps'>, options: Pick<DecodeOptions, 'fps' | 'maxFrames' | 'frameRange' | 'crop'>, name: string): number[] {
  const range = options.frameRange ?? options.crop?.frames;
  const first = range?.[0] ?? 0;
  const last = Math.min(range?.[1] ?? clip.frameCount - 1, clip.frameCount - 1);
  if (range && !(Number.isInteger(range[0]) && Number.isInteger(range[1]) && range[0] >= 0 && range[1] >= range[0])) {
    throw new PocovidError(`frame range must be two integers 0 <= first <= last, got [${range[0]}, ${range[1]}]`);
  }
  if (first > last) throw new BadInputError(name, `frame range starts at frame ${first} but the file has ${clip.frameCount} frame(s)`);
  const step = samplingStep(clip.fps, options.fps);
  const indices: number[] = [];
  for (let n = first; n <= last && indices.length < options.maxFrames; n += step) indices.push(n);
  return indices;
}

/**
 * Decodes a DICOM file (path, or bytes with a name for messages) into frames as
 * decodeVideoFrames does: crop box (clamped; an error when outside), native frame range,
 * sampling, then resize to `size`. Only the kept frames are decompressed.
 */
export async function decodeDicomFrames(
  source: string | { name: string; bytes: Uint8Array },
  options: DicomDecodeOptions,
  limits: Partial<DicomLimits> = {},
): Promise<{ info: DicomInfo; frames: DecodedFrame[] }> {
  if (!(options.fps > 0)) throw new PocovidError(`fps must be positive, got ${options.fps}`);
  if (!(Number.isInteger(options.maxFrames) && options.maxFrames >= 1)) throw new PocovidError(`maxFrames must be a positive integer, got ${options.maxFrames}`);
  const name = typeof source === 'string' ? source : source.name;
  const bytes = typeof source === 'string' ? await readDicomBytes(source) : source.bytes;
  const clip = openDicom(name, bytes, { ...(options.maxPixels !== undefined ? { maxPixels: options.maxPixels } : {}), ...limits });
  const indices = dicomFrameIndices(clip, options, name);
  let box = { x: 0, y: 0, w: clip.width, h: clip.height };
  if (options.crop) {
    const { top, left, size } = options.crop;
    if (left >= clip.width || top >= clip.height) throw new BadInputError(name, `crop at top ${top}, left ${left} lies outside the ${clip.width}x${clip.height} frame`);
    box = { x: left, y: top, w: Math.min(size, clip.width - left), h: Math.min(size, clip.height - top) };
  }
  const [outH, outW] = options.size === undefined ? [box.h, box.w] : typeof options.size === 'number' ? [options.size, options.size] : options.size;
  const frames: DecodedFrame[] = [];
  for (const [index, sourceFrame] of indices.entries()) {
    const full = await clip.frame(sourceFrame);
    const cropped = options.crop ? cropRgb(full, clip.width, box.x, box.y, box.w, box.h) : full;
    const rgb = options.size === undefined ? cropped : await resizeRgb(cropped, box.w, box.h, options.size);
    frames.push({ index, sourceFrame, time: clip.frameTimes[sourceFrame]!, width: outW, height: outH, rgb });
  }
  const patient = options.pseudonymize ? clip.pseudonym(options.pseudonymize) : undefined;
  return {
    info: {
      format: 'dicom',
      width: clip.width,
      height: clip.height,
      frameCount: clip.frameCount,
      fps: clip.fps,
      fpsSource: clip.fpsSource,
      transferSyntax: clip.transferSyntax.name,
      photometric: clip.photometric,
      burnedInAnnotation: clip.burnedInAnnotation,
      ...(patient !== undefined ? { patient } : {}),
    },
    frames,
  };
}
