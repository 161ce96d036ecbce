// Keras-style parameter counts: every weight of a trainable layer is trainable except
// BatchNorm moving statistics; every weight of a frozen layer is non-trainable.
import type * as tfl from '@tensorflow/tfjs-layers';
import { disposeBuiltModel } from './cut.js';
import type { ModelSpec, WeightSource } from './types.js';

export interface ParamCounts {
  trainable: number;
  nonTrainable: number;
}

export function countParams(model: tfl.LayersModel): ParamCounts {
  const size = (weights: { shape: (number | null)[] }[]): number =>
    weights.reduce((sum, w) => sum + w.shape.reduce<number>((n, d) => n * (d ?? 1), 1), 0);
  return { trainable: size(model.trainableWeights), nonTrainable: size(model.nonTrainableWeights) };
}

/** What `pocovid models` reports for one model: counts at 3 classes and default trainable layers. */
export interface ModelSummary {
  name: string;
  inputShape: [number, number, number];
  trainableParams: number;
  nonTrainableParams: number;
  pretrained: WeightSource[];
  description: string;
}

/** Builds the model once (weights are allocated, then freed) to count its parameters. */
export function summarizeModel(spec: ModelSpec): ModelSummary {
  const built = spec.build({ numClasses: 3 });
  try {
    const counts = countParams(built.model);
    return {
      name: spec.name,
      inputShape: [...spec.cfg.inputSize, spec.cfg.channels],
      trainableParams: counts.trainable,
      nonTrainableParams: counts.nonTrainable,
      pretrained: spec.cfg.sources,
      description: spec.description,
    };
  } finally {
    disposeBuiltModel(built);
  }
}
