// crop.json: { "<folder>/<probe>/<file>": [[top, left, size], [first_frame, last_frame]] }.
// Frame numbers count native frames of the video; [0, 0] (images) means "all frames", and so does
// a range that is empty or negative (the real file has [0, -9.2e18] for some images, from cv2).
// A malformed entry is reported through `onProblem` and ignored: one bad line must not stop a build.
import { readFileSync } from 'node:fs';
import { BadInputError } from '../errors.js';
import type { CropSpec } from '../media/sampling.js';

export type { CropSpec };

export function parseCropJson(text: string, file = 'crop.json', onProblem: (problem: string) => void = () => undefined): Map<string, CropSpec> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BadInputError(file, `not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new BadInputError(file, 'expected an object mapping file paths to [[top, left, size], [first_frame, last_frame]]');
  }
  const crops = new Map<string, CropSpec>();
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const box = Array.isArray(value) ? value[0] : undefined;
    const range = Array.isArray(value) ? value[1] : undefined;
    const numbers = (a: unknown, n: number): a is number[] =>
      Array.isArray(a) && a.length === n && a.every((x) => typeof x === 'number' && Number.isFinite(x));
    if (!numbers(box, 3) || box.some((x) => x < 0) || box[2]! < 1) {
      onProblem(`${file}: entry "${key}" ignored: expected [[top, left, size], [first_frame, last_frame]] with top, left >= 0 and size >= 1`);
      continue;
    }
    const [top, left, size] = box.map(Math.round) as [number, number, number];
    const spec: CropSpec = { top, left, size };
    if (numbers(range, 2)) {
      const [first, last] = range.map(Math.round) as [number, number];
      if (first >= 0 && last > first) spec.frames = [first, last];
    }
    crops.set(key.replace(/\\/g, '/'), spec);
  }
  return crops;
}

export function loadCropFile(path: string, onProblem?: (problem: string) => void): Map<string, CropSpec> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BadInputError(path, `cannot read (${(err as Error).message})`, { cause: err });
  }
  return parseCropJson(text, path, onProblem);
}
