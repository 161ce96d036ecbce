// Weight files: the public API of this folder (readers, converters, strict loading, the download cache).
export { cachePathFor, defaultCacheDir, fetchWeights, sha256File, type FetchOptions } from './fetch.js';
export { detectContainer, readWeightsFile, type ContainerKind, type WeightFormat, type WeightsFileContents } from './formats.js';
export { kerasWeightName, readKerasH5 } from './keras_h5.js';
export {
  headLayerPrefixes,
  loadModelWeightsFile,
  loadPretrained,
  loadWeightsIntoModel,
  modelWeightsByName,
  readModelWeights,
  saveModelWeights,
  type LoadIntoModelOptions,
  type LoadReport,
} from './load.js';
export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type SafetensorsContents,
  type SafetensorsDtype,
} from './safetensors.js';
export { transposeTensor, type NamedTensor, type TensorMap } from './tensors.js';
export { convertTorchvision, looksLikeTorchvision } from './torchvision.js';
