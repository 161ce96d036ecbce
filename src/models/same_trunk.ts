// Whether two frozen parts (backbones cut from models) compute the same function: the same layers
// with the same configuration and the same weights. The default recipe's fold models all keep
// ImageNet's frozen MobileNet; the page then runs it once per frame for all of them
// (src/serve/page/member_forwards.ts) and an adaptation computes its features once (src/adapt).
// Browser-safe.
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * Same layers, same configuration, same weights: the frozen parts compute the same function.
 * Weights named in `sameBytes` were built from the very same stored bytes (an export's
 * shared-weights.bin, checked once against its digest): their values are not compared again.
 */
export function sameTrunk(a: tfl.LayersModel, b: tfl.LayersModel, sameBytes: ReadonlySet<string> = new Set()): boolean {
  if (a === b) return true;
  const config = (m: tfl.LayersModel): string => JSON.stringify(m.layers.map((l) => [l.getClassName(), l.getConfig()]));
  if (a.weights.length !== b.weights.length || config(a) !== config(b)) return false;
  return a.weights.every((w, i) => {
    const v = b.weights[i]!;
    if (w.originalName !== v.originalName || w.shape.join() !== v.shape.join()) return false;
    if (sameBytes.has(w.originalName)) return true;
    const [x, y] = [w.read().dataSync(), v.read().dataSync()];
    for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return false;
    return true;
  });
}
