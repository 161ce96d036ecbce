// torchvision state_dict names and layouts → our Keras-style names and layouts.
// Names: module path with '.' → '_' (`layer4.1.conv2` → `layer4_1_conv2`), except VGG's `features.N`
// which become Keras' `blockB_convC`. Layouts: conv OIHW → HWIO, linear [out, in] → [in, out].
// BatchNorm (recognised by its running_mean): weight/bias/running_mean/running_var →
// gamma/beta/moving_mean/moving_variance. Dropped by rule: `num_batches_tracked` (a counter, no weight of
// ours) and the ImageNet classifier (`fc.*`, `classifier.*`), which our heads replace.
import { BadInputError } from '../../errors.js';
import { transposeTensor, type NamedTensor, type TensorMap } from './tensors.js';

const OIHW_TO_HWIO = [2, 3, 1, 0];
const OUT_IN_TO_IN_OUT = [1, 0];

/** torchvision vgg16 `features` indices of the 13 convolutions, in Keras' order. */
const VGG16_FEATURE_CONVS: Record<string, string> = {
  '0': 'block1_conv1', '2': 'block1_conv2',
  '5': 'block2_conv1', '7': 'block2_conv2',
  '10': 'block3_conv1', '12': 'block3_conv2', '14': 'block3_conv3',
  '17': 'block4_conv1', '19': 'block4_conv2', '21': 'block4_conv3',
  '24': 'block5_conv1', '26': 'block5_conv2', '28': 'block5_conv3',
};

/** Top-level torchvision modules that are the ImageNet classifier. */
export const TORCHVISION_CLASSIFIER_MODULES = ['fc', 'classifier'];

const BN_PARAMS: Record<string, string> = {
  weight: 'gamma',
  bias: 'beta',
  running_mean: 'moving_mean',
  running_var: 'moving_variance',
};

export interface ConvertedWeights {
  /** Our names (`layer/weight`) and layouts. */
  tensors: TensorMap;
  /** File tensor names dropped by rule (classifier, counters). */
  dropped: string[];
}

/** Tensors never loaded from a torchvision file: BatchNorm's batch counter and the ImageNet classifier. */
export function droppedByTorchvisionRule(name: string): boolean {
  return name.endsWith('.num_batches_tracked') || TORCHVISION_CLASSIFIER_MODULES.includes(name.split('.')[0]!);
}

/** True when the names look like a PyTorch state_dict rather than Keras `layer/weight` names. */
export function looksLikeTorchvision(names: Iterable<string>): boolean {
  for (const name of names) {
    if (name.includes('/')) return false;
    if (/\.(weight|bias|running_mean|running_var|num_batches_tracked)$/.test(name)) return true;
  }
  return false;
}

function ourLayerName(module: string, source: string): string {
  const vgg = /^features\.(\d+)$/.exec(module);
  if (vgg) {
    const block = VGG16_FEATURE_CONVS[vgg[1]!];
    if (block === undefined) {
      throw new BadInputError(source, `"${module}" is not one of the 13 VGG-16 convolutions (features.{${Object.keys(VGG16_FEATURE_CONVS).join(',')}})`);
    }
    return block;
  }
  return module.replaceAll('.', '_');
}

/** Converts a torchvision state_dict (already read into float32) to our names and layouts. */
export function convertTorchvision(tensors: TensorMap, source: string): ConvertedWeights {
  const converted: TensorMap = new Map();
  const dropped: string[] = [];
  for (const [name, tensor] of tensors) {
    const dot = name.lastIndexOf('.');
    if (dot <= 0) throw new BadInputError(source, `tensor "${name}" is not a torchvision "<module>.<parameter>" name`);
    const module = name.slice(0, dot);
    const param = name.slice(dot + 1);
    if (droppedByTorchvisionRule(name)) {
      dropped.push(name);
      continue;
    }
    const layer = ourLayerName(module, source);
    const isBatchNorm = tensors.has(`${module}.running_mean`) || tensors.has(`${module}.running_var`);
    const [ourParam, value] = isBatchNorm ? batchNormParam(name, param, tensor, source) : convOrLinearParam(name, param, tensor, source);
    const ourName = `${layer}/${ourParam}`;
    if (converted.has(ourName)) throw new BadInputError(source, `two tensors map to "${ourName}" (the second is "${name}")`);
    converted.set(ourName, value);
  }
  return { tensors: converted, dropped };
}

function batchNormParam(name: string, param: string, tensor: NamedTensor, source: string): [string, NamedTensor] {
  const ours = BN_PARAMS[param];
  if (ours === undefined) throw new BadInputError(source, `tensor "${name}": unknown BatchNorm parameter "${param}"`);
  return [ours, tensor];
}

function convOrLinearParam(name: string, param: string, tensor: NamedTensor, source: string): [string, NamedTensor] {
  if (param === 'bias') return ['bias', tensor];
  if (param !== 'weight') throw new BadInputError(source, `tensor "${name}": unknown parameter "${param}"`);
  switch (tensor.shape.length) {
    case 4: return ['kernel', transposeTensor(tensor, OIHW_TO_HWIO)];
    case 2: return ['kernel', transposeTensor(tensor, OUT_IN_TO_IN_OUT)];
    default:
      throw new BadInputError(source, `tensor "${name}": a weight of rank ${tensor.shape.length} is neither a convolution (4) nor a linear layer (2)`);
  }
}
