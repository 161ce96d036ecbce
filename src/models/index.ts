// The model zoo's public entry point. Importing it registers every backbone.
import './vgg16.js';
import './vgg16_cam.js';
import './resnet18.js';
import './mobilenet_v1.js';
import './grayscale_cnn.js';

export { createModel, getModelSpec, listModels, modelNames, registerModel } from './registry.js';
export { cutModel, disposeBuiltModel, layerOutput } from './cut.js';
export { countParams, summarizeModel, type ModelSummary, type ParamCounts } from './params.js';
export type { BuiltModel, ModelOptions, ModelSpec, PretrainedCfg, WeightSource } from './types.js';
