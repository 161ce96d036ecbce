// The 'pipeline' augmentation: a training view of a frame is the frame as another pipeline would
// hand it over, by one of the small pixel changes `pocovid robustness` measures (src/data/perturb.ts):
// a grey level or two of noise, a JPEG re-encoding, another resize kernel, a crop off by a pixel,
// a gain change. The view is made from the stored 8-bit frame, before the sector and the
// preprocessing, as a real pipeline makes it. With a logistic head and --invariance these views
// teach the head which feature directions such changes move (src/train/logistic_head.ts).
import type { RgbImage } from '../media/resize.js';
import type { Rng } from '../util/rng.js';
import { addGreyNoise, applyGain, jpegRoundTrip, resizeRoundTrip, shiftImage } from './perturb.js';

/** Share of the size a resize round trip goes down to (the same as robustness' fallback without a native frame). */
const ROUND_TRIP_FACTOR = 0.75;

interface PipelineChange {
  name: string;
  apply(image: RgbImage, rng: Rng): RgbImage | Promise<RgbImage>;
}

/** Every change a view may get, each as likely as the others. */
export const PIPELINE_CHANGES: readonly PipelineChange[] = [
  { name: 'noise-1', apply: (image, rng) => addGreyNoise(image, 1, rng) },
  { name: 'noise-2', apply: (image, rng) => addGreyNoise(image, 2, rng) },
  { name: 'jpeg-95', apply: (image) => jpegRoundTrip(image, 95) },
  { name: 'jpeg-75', apply: (image) => jpegRoundTrip(image, 75) },
  { name: 'resize-bilinear', apply: (image) => resizeRoundTrip(image, 'bilinear', ROUND_TRIP_FACTOR) },
  { name: 'resize-area', apply: (image) => resizeRoundTrip(image, 'area', ROUND_TRIP_FACTOR) },
  { name: 'resize-lanczos3', apply: (image) => resizeRoundTrip(image, 'lanczos3', ROUND_TRIP_FACTOR) },
  {
    name: 'shift-1',
    apply: (image, rng) => {
      const [dx, dy] = ([[1, 0], [-1, 0], [0, 1], [0, -1]] as const)[rng.int(4)]!;
      return shiftImage(image, dx, dy);
    },
  },
  { name: 'gain±5', apply: (image, rng) => applyGain(image, rng.int(2) === 0 ? 1.05 : 0.95) },
];

export const PIPELINE_CHANGE_NAMES: readonly string[] = PIPELINE_CHANGES.map((c) => c.name);

/** One change drawn from `rng` (then its own randomness from the same stream), applied to a copy of `image`. */
export async function pipelineView(image: RgbImage, rng: Rng): Promise<{ image: RgbImage; change: string }> {
  const change = PIPELINE_CHANGES[rng.int(PIPELINE_CHANGES.length)]!;
  return { image: await change.apply(image, rng), change: change.name };
}
