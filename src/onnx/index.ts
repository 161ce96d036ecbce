// ONNX export and the ONNX Runtime / TF.js forward runners (gradient-free passes).
export { DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, exportOnnx, modelToOnnx } from './export.js';
export type { OnnxExportOptions, OnnxExportResult, OnnxTensorInfo } from './export.js';
export { SUPPORTED_LAYERS } from './layers.js';
export { cachedOnnxFile, defaultOnnxCacheDir, modelFingerprint } from './cache.js';
export {
  RUNTIME_CHOICES,
  chooseRuntime,
  createForwardRunner,
  createOrtRunnerFromSession,
  createOrtSession,
  createTfjsRunner,
  defaultOrtThreads,
  loadOrt,
  parseRuntimeChoice,
} from './runtime.js';
export type { ForwardRunner, ForwardRunnerOptions, OrtModule, Runtime, RuntimeChoice } from './runtime.js';
export { ONNX_MEMBER_FILE, exportModelDirOnnx } from './model_dir.js';
