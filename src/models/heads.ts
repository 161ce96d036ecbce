// Classification heads shared by the backbones, and seeded weight initialisers.
// Layer names here are part of the weight-file and CAM contract: head_*, cam_gap, classifier.
import * as tfl from '@tensorflow/tfjs-layers';
import { createRng, type Rng } from '../util/rng.js';

type SymbolicTensor = tfl.SymbolicTensor;
type Layer = tfl.LayersModel['layers'][number];
type Initializer = ReturnType<typeof tfl.initializers.heNormal>;

/**
 * Hands out initialisers with seeds drawn from one seeded stream, so a model built twice with
 * the same seed has the same weights (tfjs would otherwise use Math.random).
 */
export class SeededInit {
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = createRng(seed);
  }

  private nextSeed(): number {
    return this.rng.int(2 ** 31 - 1);
  }

  /**
   * He (Kaiming) initialisation for conv kernels followed by ReLU, as torchvision does; uniform
   * rather than normal because tfjs' seeded normal sampler is ~3× slower, which matters when
   * filling VGG-16's 15M weights (pretrained backbones overwrite them anyway).
   */
  conv(): Initializer {
    return tfl.initializers.heUniform({ seed: this.nextSeed() });
  }

  /**
   * He uniform for a depthwise kernel: tfjs computes its fan-in as k·k·channels, but each output
   * sees only k·k inputs, so its own heUniform would shrink activations by √channels per layer
   * (a randomly initialised MobileNet then outputs ~1e-13 after twelve blocks).
   */
  depthwise(kernelSize: number): Initializer {
    const limit = Math.sqrt(6 / (kernelSize * kernelSize));
    return tfl.initializers.randomUniform({ minval: -limit, maxval: limit, seed: this.nextSeed() });
  }

  /** Glorot uniform: the Keras default for Dense layers. */
  dense(): Initializer {
    return tfl.initializers.glorotUniform({ seed: this.nextSeed() });
  }
}

export interface HeadOptions {
  numClasses: number;
  dropout: number;
  init: SeededInit;
}

/**
 * The POCOVID-Net head: [pool] → head_dense 64 → [head_bn] → head_relu → head_dropout →
 * classifier (softmax). `pooling` 'avg4x4' is the paper's AveragePooling2D(4×4) + Flatten on
 * VGG's 7×7 map; 'global' is GlobalAveragePooling for backbones whose maps differ in size.
 * The 64-d output of head_relu is the penultimate feature (cfg.featureLayer, used by t-SNE).
 */
export function pocovidHead(
  features: SymbolicTensor,
  options: HeadOptions & { pooling: 'avg4x4' | 'global'; batchNorm: boolean },
): SymbolicTensor {
  let x: SymbolicTensor;
  if (options.pooling === 'avg4x4') {
    x = apply(tfl.layers.averagePooling2d({ poolSize: 4, strides: 4, name: 'head_pool' }), features);
    x = apply(tfl.layers.flatten({ name: 'head_flatten' }), x);
  } else {
    x = apply(tfl.layers.globalAveragePooling2d({ name: 'head_gap' }), features);
  }
  x = apply(tfl.layers.dense({ units: 64, name: 'head_dense', kernelInitializer: options.init.dense() }), x);
  if (options.batchNorm) x = apply(tfl.layers.batchNormalization({ name: 'head_bn' }), x);
  x = apply(tfl.layers.reLU({ name: 'head_relu' }), x);
  return classify(x, options);
}

/**
 * The CAM head (Zhou et al. 2016): cam_gap → head_dropout → classifier, so that the class map
 * is the classifier's weights applied to the last conv layer's channels.
 */
export function camHead(features: SymbolicTensor, options: HeadOptions): SymbolicTensor {
  const x = apply(tfl.layers.globalAveragePooling2d({ name: 'cam_gap' }), features);
  return classify(x, options);
}

function classify(x: SymbolicTensor, options: HeadOptions): SymbolicTensor {
  // Dropout gets no seed on purpose: tfjs re-creates its generator from the seed on every call,
  // so a seeded Dropout would drop the same units in every training step.
  const dropped = apply(tfl.layers.dropout({ rate: options.dropout, name: 'head_dropout' }), x);
  return apply(
    tfl.layers.dense({
      units: options.numClasses,
      activation: 'softmax',
      name: 'classifier',
      kernelInitializer: options.init.dense(),
    }),
    dropped,
  );
}

/** Applies a layer to one symbolic tensor (tfjs types `apply` loosely). */
export function apply(layer: Layer, x: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
  return layer.apply(x) as SymbolicTensor;
}
