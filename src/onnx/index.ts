// ONNX export and the ONNX Runtime / TF.js forward runners (gradient-free passes).
export { DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, exportOnnx, modelToOnnx } from './export.js';
export type { OnnxExportOptions, OnnxExportResult, OnnxTensorInfo } from './export.js';
export { SUPPORTED_LAYERS } from './layers.js';
export { cachedOnnxFile, defaultOnnxCacheDir, modelFingerprint } from './cache.js';
export {
  RUNTIME_CHOICES,
  chooseRuntime,
  createForwardRunner,
  createOrtRunner,
  createOrtRunnerFromSession,
  createOrtSession,
  createTfjsRunner,
  defaultOrtThreads,
  loadOrt,
  parseRuntimeChoice,
} from './runtime.js';
export type { ForwardRunner, ForwardRunnerOptions, OrtModule, Runtime, RuntimeChoice } from './runtime.js';
export { ONNX_MEMBER_FILE, exportModelDirOnnx } from './model_dir.js';
export { CALIBRATION_METHODS, calibrateRanges, quantizeModel } from './calibrate.js';
export type { Calibration, CalibrationMethod, CalibrationOptions } from './calibrate.js';
export { quantizedModelToOnnx } from './quantize.js';
export { INT8_MEMBER_FILE, INT8_REPORT_FILE, exportModelDirInt8, int8MemberFiles } from './int8_model_dir.js';
export type { Int8ExportOptions, Int8Report } from './int8_model_dir.js';
