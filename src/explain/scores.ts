// Class scores for gradient methods (saliency, class visualisation): the pre-softmax logit when the
// model ends in a softmax Dense or Activation, because softmax saturates and a confident class then
// gets almost no gradient; else log p (same arg-max and the same gradients up to the softmax's).
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { layerInput, modelTo } from './graph.js';

export interface ClassScorer {
  /** [n, H, W, C] → [n, classes]. Differentiable; call inside tf.tidy / tf.grad. */
  scores(x: tf.Tensor): tf.Tensor2D;
  /** 'logit' when the pre-softmax value is reachable, else 'log-prob'. */
  kind: 'logit' | 'log-prob';
}

export function classScorer(model: tfl.LayersModel): ClassScorer {
  const last = model.layers[model.layers.length - 1]!;
  const config = last.getConfig();
  const className = last.getClassName();
  if (config['activation'] === 'softmax' && (className === 'Dense' || className === 'Activation')) {
    const before = modelTo(model, `score-input:${last.name}`, layerInput(last));
    if (className === 'Activation') {
      return { kind: 'logit', scores: (x) => before.apply(x, { training: false }) as tf.Tensor2D };
    }
    const [kernel, bias] = last.getWeights();
    return {
      kind: 'logit',
      scores: (x) => {
        const features = before.apply(x, { training: false }) as tf.Tensor;
        const z = tf.matMul(tf.reshape(features, [features.shape[0]!, -1]), kernel!);
        return (bias ? tf.add(z, bias) : z) as tf.Tensor2D;
      },
    };
  }
  return {
    kind: 'log-prob',
    scores: (x) => tf.log(tf.add(model.apply(x, { training: false }) as tf.Tensor, 1e-12)) as tf.Tensor2D,
  };
}

/**
 * Σ over the batch of score[:, classIndex], by a one-hot product rather than tf.gather: gather's
 * gradient needs UnsortedSegmentSum, which the wasm backend does not have.
 */
export function pickClass(scores: tf.Tensor2D, classIndex: number): tf.Scalar {
  const classes = scores.shape[1];
  return tf.sum(tf.mul(scores, tf.oneHot(tf.tensor1d([classIndex], 'int32'), classes))) as tf.Scalar;
}
