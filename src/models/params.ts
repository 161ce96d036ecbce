// Keras-style parameter counts: every weight of a trainable layer is trainable except
// BatchNorm moving statistics; every weight of a frozen layer is non-trainable.
import type * as tfl from '@tensorflow/tfjs-layers';

export interface ParamCounts {
  trainable: number;
  nonTrainable: number;
}

export function countParams(model: tfl.LayersModel): ParamCounts {
  const size = (weights: { shape: (number | null)[] }[]): number =>
    weights.reduce((sum, w) => sum + w.shape.reduce<number>((n, d) => n * (d ?? 1), 1), 0);
  return { trainable: size(model.trainableWeights), nonTrainable: size(model.nonTrainableWeights) };
}
