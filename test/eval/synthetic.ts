// Seeded synthetic predictions for report tests and the example report: videos of a few frames,
// each frame's probabilities a softmax of noisy logits that favour the true class.
import { createRng } from '../../src/util/rng.js';
import type { PredictionRow } from '../../src/eval/types.js';

export function syntheticPredictions(options: { classes: string[]; videos: number; framesPerVideo: number; folds: number; signal: number; seed: number }): PredictionRow[] {
  const rng = createRng(options.seed);
  const rows: PredictionRow[] = [];
  for (let v = 0; v < options.videos; v++) {
    const label = v % options.classes.length;
    const videoBias = options.classes.map(() => 0.5 * rng.normal());
    const source = `pocus_videos/convex/${options.classes[label]}_${v}.mp4`;
    for (let f = 0; f < options.framesPerVideo; f++) {
      const logits = options.classes.map((_, k) => (k === label ? options.signal : 0) + videoBias[k]! + rng.normal());
      const exp = logits.map(Math.exp);
      const total = exp.reduce((a, b) => a + b, 0);
      const probs = exp.map((e) => e / total);
      const predicted = probs.indexOf(Math.max(...probs));
      rows.push({
        path: `frames/${options.classes[label]}_${v}_${f}.png`,
        source,
        patient: `patient-${Math.floor(v / 2)}`,
        fold: Math.floor(v / 2) % options.folds,
        label: options.classes[label]!,
        predicted: options.classes[predicted]!,
        probs,
      });
    }
  }
  return rows;
}
