// Strict weight loading (as tfjs container.ts loadWeights): every file tensor must fit a model weight by
// name and shape, and every model weight must be set, except the exceptions named by the caller
// (a dropped classifier, a freshly initialised head). One error lists every problem at once.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { basename } from 'node:path';
import { WeightMismatchError } from '../../errors.js';
import { VERSION } from '../../version.js';
import { ANTI_ALIAS_PREFIX } from '../anti_alias.js';
import type { BuiltModel } from '../types.js';
import { readWeightsFile, type WeightFormat } from './formats.js';
import { writeSafetensors } from './safetensors.js';
import { formatShape, matchesAnyName, sameShape, type TensorMap } from './tensors.js';

export interface LoadIntoModelOptions {
  /** Layer-name prefixes whose weights are deliberately left at their initial values (e.g. the head). */
  allowUnset?: string[];
  /** File tensor names deliberately not loaded (e.g. the ImageNet classifier); a trailing `*` matches a prefix. */
  dropped?: string[];
  /** Names the weights' origin in errors (usually the file path). */
  source: string;
}

export interface LoadReport {
  /** Model weight names that were set. */
  loaded: string[];
  /** Model weight names left at their initial values (all inside allowUnset). */
  unset: string[];
  /** File tensor names skipped because they were listed as dropped. */
  dropped: string[];
}

/**
 * Every weight of a model keyed `<layer>/<weight>` (the names our files and Keras use). TF.js makes
 * variable names unique per process (`conv1/kernel_1` for a second model), so the key is built from the
 * layer name and the last part of `originalName`. Nested models are walked so that names stay flat.
 */
export function modelWeightsByName(model: tfl.LayersModel): Map<string, tfl.LayerVariable> {
  const byName = new Map<string, tfl.LayerVariable>();
  const visit = (layer: tfl.layers.Layer): void => {
    const inner = (layer as { layers?: tfl.layers.Layer[] }).layers;
    if (Array.isArray(inner)) {
      for (const child of inner) visit(child);
      return;
    }
    for (const variable of layer.weights) {
      const weight = variable.originalName.slice(variable.originalName.lastIndexOf('/') + 1);
      const key = `${layer.name}/${weight}`;
      if (byName.has(key)) throw new Error(`model "${model.name}" has two weights named "${key}"`);
      byName.set(key, variable);
    }
  };
  for (const layer of model.layers) visit(layer);
  return byName;
}

function layerOf(weightName: string): string {
  return weightName.slice(0, weightName.lastIndexOf('/'));
}

/** Loads `tensors` into `model` strictly; throws WeightMismatchError listing every problem, changing nothing. */
export function loadWeightsIntoModel(model: tfl.LayersModel, tensors: TensorMap, options: LoadIntoModelOptions): LoadReport {
  const allowUnset = options.allowUnset ?? [];
  const droppedPatterns = options.dropped ?? [];
  const weights = modelWeightsByName(model);

  const unmatched: string[] = [];
  const mismatched: string[] = [];
  const dropped: string[] = [];
  const assignments: [tfl.LayerVariable, string][] = [];
  for (const [name, tensor] of tensors) {
    if (matchesAnyName(name, droppedPatterns)) {
      dropped.push(name);
      continue;
    }
    const variable = weights.get(name);
    if (variable === undefined) unmatched.push(name);
    else if (!sameShape(variable.shape as number[], tensor.shape)) {
      mismatched.push(`${name}: file ${formatShape(tensor.shape)}, model ${formatShape(variable.shape as number[])}`);
    } else assignments.push([variable, name]);
  }
  const setNames = new Set(assignments.map(([, name]) => name));
  const missing: string[] = [];
  const unset: string[] = [];
  for (const name of weights.keys()) {
    if (setNames.has(name)) continue;
    if (allowUnset.some((prefix) => layerOf(name).startsWith(prefix))) unset.push(name);
    else missing.push(name);
  }

  if (unmatched.length + mismatched.length + missing.length > 0) {
    const lines = [`${options.source}: weights do not fit model "${model.name}"`];
    if (unmatched.length) lines.push(`  ${unmatched.length} file tensor(s) match no model weight: ${unmatched.join(', ')}`);
    if (mismatched.length) lines.push(`  ${mismatched.length} shape mismatch(es): ${mismatched.join('; ')}`);
    if (missing.length) lines.push(`  ${missing.length} model weight(s) not in the file: ${missing.join(', ')}`);
    throw new WeightMismatchError(lines.join('\n'));
  }

  for (const [variable, name] of assignments) {
    const { shape, data } = tensors.get(name)!;
    const value = tf.tensor(data, shape, 'float32');
    try {
      variable.write(value);
    } finally {
      value.dispose();
    }
  }
  return { loaded: [...setNames], unset, dropped };
}

/** A model's weights as plain arrays keyed `<layer>/<weight>` (what saveModelWeights writes). */
export function readModelWeights(model: tfl.LayersModel): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, variable] of modelWeightsByName(model)) {
    out.set(name, { shape: [...(variable.shape as number[])], data: (variable.read().dataSync() as Float32Array).slice() });
  }
  return out;
}

/**
 * Layers that pretrained files never hold: our heads (named `head_*`), the classifier, and the
 * fixed low-pass filters of anti-aliased downsampling (set when built, src/models/anti_alias.ts).
 * Everything else, the whole backbone including its trainable last layers, must come from the file.
 */
export function headLayerPrefixes(built: BuiltModel): string[] {
  return ['head_', built.cfg.classifier, ...(built.cfg.antiAlias ? [ANTI_ALIAS_PREFIX] : [])];
}

/**
 * Loads a pretrained backbone file (Keras HDF5, Keras-named or torchvision safetensors) into a built
 * model: the backbone strictly, the head left at its initialisation, the file's classifier dropped
 * (by the conversion rule or by the matching WeightSource's `dropped`).
 */
export async function loadPretrained(built: BuiltModel, file: string, format?: WeightFormat): Promise<LoadReport> {
  const sources = built.cfg.sources;
  const named = sources.filter((s) => s.fileName === basename(file));
  const candidates = named.length > 0 ? named : sources.filter((s) => format === undefined || s.format === format);
  // `dropped` names are the file's own names (before conversion); the reader removes them.
  const dropped = candidates.flatMap((s) => s.dropped ?? []);
  const contents = await readWeightsFile(file, format, { dropped });
  const report = loadWeightsIntoModel(built.model, contents.tensors, { allowUnset: headLayerPrefixes(built), source: file });
  return { ...report, dropped: contents.dropped };
}

/** Metadata keys that saveModelWeights writes and loadModelWeightsFile checks. */
export const MODEL_METADATA_KEYS = { model: 'pocovid_model', version: 'pocovid_version' } as const;

/**
 * Loads a whole model saved by saveModelWeights (our names, F32), everything strict: this is what
 * `--weights <file>` uses for a trained model. Returns the file's metadata.
 */
export async function loadModelWeightsFile(built: BuiltModel, file: string): Promise<Record<string, string>> {
  const contents = await readWeightsFile(file);
  if (contents.format !== 'keras-safetensors') {
    throw new WeightMismatchError(
      `${file}: a trained-model file must be a safetensors file with our layer names (saved by pocovid), got ${contents.format}; ` +
        'pretrained backbones are loaded with loadPretrained',
    );
  }
  const savedFor = contents.metadata[MODEL_METADATA_KEYS.model];
  if (savedFor !== undefined && savedFor !== built.name) {
    throw new WeightMismatchError(`${file}: holds weights of model "${savedFor}", not "${built.name}"`);
  }
  loadWeightsIntoModel(built.model, contents.tensors, { source: file });
  return contents.metadata;
}

/**
 * Saves every weight of a model (F32 safetensors, our names, atomic write). A BuiltModel also records its
 * model name so that loading into another architecture fails with a clear message.
 */
export async function saveModelWeights(
  model: tfl.LayersModel | BuiltModel,
  file: string,
  metadata: Record<string, string> = {},
): Promise<void> {
  const layersModel = 'head' in model ? model.model : model;
  const extra: Record<string, string> = { [MODEL_METADATA_KEYS.version]: VERSION };
  if ('head' in model) extra[MODEL_METADATA_KEYS.model] = model.name;
  await writeSafetensors(file, readModelWeights(layersModel), { ...extra, ...metadata });
}
