// The model registry (timm style): each backbone file registers its ModelSpec on import,
// and everything else asks the registry by name. src/models/index.ts imports every backbone.
import { PocovidError, UnknownChoiceError } from '../errors.js';
import type { BuiltModel, ModelOptions, ModelSpec } from './types.js';

const specs = new Map<string, ModelSpec>();

/** Adds a model; called once at the bottom of each backbone module. */
export function registerModel(spec: ModelSpec): ModelSpec {
  if (specs.has(spec.name)) throw new Error(`model "${spec.name}" is registered twice`);
  specs.set(spec.name, spec);
  return spec;
}

/** Every registered model, sorted by name. */
export function listModels(): ModelSpec[] {
  return [...specs.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function modelNames(): string[] {
  return listModels().map((spec) => spec.name);
}

/** The spec for `name`; throws UnknownChoiceError listing the valid names. */
export function getModelSpec(name: string): ModelSpec {
  const spec = specs.get(name);
  if (!spec) throw new UnknownChoiceError('model', name, modelNames());
  return spec;
}

/** Builds a fresh model (new weights) with the given options. */
export function createModel(name: string, options: ModelOptions): BuiltModel {
  const spec = getModelSpec(name);
  validateOptions(options);
  return spec.build(options);
}

/** Checks options that every backbone shares, so each build gets sane values. */
export function validateOptions(options: ModelOptions): void {
  const { numClasses, trainableLayers, dropout, inputSize } = options;
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new PocovidError(`numClasses must be an integer >= 2, got ${numClasses}`);
  }
  if (trainableLayers !== undefined && (!Number.isInteger(trainableLayers) || trainableLayers < 0)) {
    throw new PocovidError(`trainableLayers must be an integer >= 0, got ${trainableLayers}`);
  }
  if (dropout !== undefined && !(dropout >= 0 && dropout < 1)) {
    throw new PocovidError(`dropout must be in [0, 1), got ${dropout}`);
  }
  if (inputSize !== undefined && !inputSize.every((side) => Number.isInteger(side) && side > 0)) {
    throw new PocovidError(`inputSize must be two positive integers, got ${JSON.stringify(inputSize)}`);
  }
}
