// TF.js layers-format (model.json + weights.bin) serialisation without a file:// handler:
// Node has none unless tfjs-node is installed (it cannot be here), so we capture the artifacts
// with tf.io.withSaveHandler and write / read the files ourselves. The same files load in the
// browser with tf.loadLayersModel(url).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BadInputError } from '../errors.js';
import { concatBytes } from '../util/bytes.js';
import { SHARED_WEIGHTS_PATH } from './names.js';

export const WEIGHTS_FILE = 'weights.bin';

export interface LayersFiles {
  /** Contents of model.json (tf.io.ModelJSON). */
  modelJson: tf.io.ModelJSON;
  /** Weight files named in modelJson.weightsManifest, by file name. */
  weightFiles: Map<string, Uint8Array>;
}

/** Captures a Layers model as model.json + one weights.bin (in memory). */
export async function layersModelToFiles(model: tfl.LayersModel): Promise<LayersFiles> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!captured || !captured.modelTopology || !captured.weightSpecs) {
    throw new Error('model.save produced no topology or weight specs');
  }
  const weightData = captured.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(captured.weightData);
  const modelJson: tf.io.ModelJSON = {
    modelTopology: captured.modelTopology,
    format: 'layers-model',
    generatedBy: captured.generatedBy ?? 'TensorFlow.js',
    convertedBy: null,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: captured.weightSpecs }],
  };
  return { modelJson, weightFiles: new Map([[WEIGHTS_FILE, new Uint8Array(weightData)]]) };
}

/** Builds a Layers model from model.json + its weight files (in memory). */
export async function layersModelFromFiles(files: LayersFiles): Promise<tfl.LayersModel> {
  const { modelJson, weightFiles } = files;
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const path of group.paths) {
      const data = weightFiles.get(path);
      if (!data) throw new Error(`weight file "${path}" named in model.json is missing`);
      chunks.push(data);
    }
  }
  checkWeightBytes(files);
  const joined = concatBytes(chunks);
  return tfl.loadLayersModel(
    tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs, weightData: joined.buffer }),
  );
}

/**
 * The weight files a parsed model.json names, once it is checked to be a TF.js layers model.
 * Weight-file names in a manifest must be plain names, or the model folder's shared weights one
 * level up (shared_weights.ts): a model folder never reaches outside itself.
 */
export function weightFileNames(modelJson: tf.io.ModelJSON): string[] {
  if (!modelJson?.modelTopology || !Array.isArray(modelJson?.weightsManifest)) throw new Error('not a TF.js layers model (no modelTopology / weightsManifest)');
  const names = modelJson.weightsManifest.flatMap((group) => group.paths);
  for (const name of names) {
    if (name === SHARED_WEIGHTS_PATH) continue;
    if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) {
      throw new Error(`weight file name "${name}" is not a plain file name`);
    }
  }
  return names;
}

/** Bytes per stored value, by dtype (a quantised weight by its stored dtype). */
export const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/** Bytes the weights of one manifest group occupy, or undefined when a dtype's size is not fixed (strings). */
function groupBytes(group: tf.io.WeightsManifestConfig[number]): number | undefined {
  let total = 0;
  for (const spec of group.weights) {
    const per = DTYPE_BYTES[spec.quantization?.dtype ?? spec.dtype];
    if (per === undefined) return undefined;
    total += per * spec.shape.reduce((a: number, b: number) => a * b, 1);
  }
  return total;
}

/**
 * Each manifest group's weight files must hold exactly the bytes its weights need: a truncated
 * weights.bin would otherwise load with its last tensors read past the end (TF.js then fails deep
 * inside, or not at all). `pathOf` turns a file name into the path shown in the error.
 */
export function checkWeightBytes(files: LayersFiles, pathOf: (name: string) => string = (name) => name): void {
  for (const group of files.modelJson.weightsManifest) {
    const need = groupBytes(group);
    if (need === undefined) continue;
    const have = group.paths.reduce((n, p) => n + (files.weightFiles.get(p)?.byteLength ?? 0), 0);
    if (have !== need) {
      const where = group.paths.map(pathOf).join(' + ');
      const how = have < need ? 'truncated' : 'longer than its weights';
      throw new BadInputError(where, `damaged (${how}): ${have} bytes, but model.json's weights need ${need}`);
    }
  }
}
