// Keras HDF5 weight files (`model.save_weights('x.h5')`, keras.applications `*_notop.h5`), read with h5wasm.
// Layout: attribute `layer_names` on the root (or on /model_weights for a whole saved model); one group
// per layer with attribute `weight_names`, whose entries are dataset paths relative to that group:
// Keras 2 writes `block1_conv1/kernel:0`, Keras 1 (the VGG16 notop file POCOVID-Net used) wrote
// `block1_conv1_W_1:0`. Both map to our `<layer>/<weight>` names; kernels are already HWIO.
import { existsSync } from 'node:fs';
import h5wasm from 'h5wasm/node';
import { BadInputError } from '../../errors.js';
import type { TensorMap } from './tensors.js';

/** First bytes of an HDF5 file (the superblock signature). */
export const HDF5_SIGNATURE = Uint8Array.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

// Keras 1 / legacy weight names → Keras 2 names (which are also the TF.js names).
const LEGACY_WEIGHT_NAMES: Record<string, string> = {
  W: 'kernel',
  b: 'bias',
  depthwise_W: 'depthwise_kernel',
  pointwise_W: 'pointwise_kernel',
  gamma: 'gamma',
  beta: 'beta',
  running_mean: 'moving_mean',
  // Keras 1 named the BN variance "running_std" although it stored the variance.
  running_std: 'moving_variance',
};

/**
 * Our name for one entry of a layer's `weight_names`, or undefined when the name follows neither
 * convention. `block1_conv1/kernel:0` → `block1_conv1/kernel`; `block1_conv1_W_1:0` → `block1_conv1/kernel`.
 */
export function kerasWeightName(layer: string, h5Name: string): string | undefined {
  const withoutIndex = h5Name.replace(/:\d+$/, '');
  const slash = withoutIndex.lastIndexOf('/');
  if (slash >= 0) return `${layer}/${withoutIndex.slice(slash + 1)}`;
  if (withoutIndex.startsWith(`${layer}_`)) {
    const legacy = withoutIndex.slice(layer.length + 1).replace(/_\d+$/, '');
    const modern = LEGACY_WEIGHT_NAMES[legacy];
    if (modern !== undefined) return `${layer}/${modern}`;
  }
  return undefined;
}

function attributeStrings(value: unknown): string[] {
  const items = Array.isArray(value) ? value : [value];
  return items.map((item) => (item instanceof Uint8Array ? new TextDecoder().decode(item).replace(/\0+$/, '') : String(item)));
}

/**
 * A list-of-strings attribute. Keras splits one above HDF5's 64 kB attribute limit into `name0`,
 * `name1`, ... (save_attributes_to_hdf5_group), so both forms are read. Undefined when absent.
 */
function stringListAttribute(group: InstanceType<typeof h5wasm.Group>, name: string): string[] | undefined {
  const attrs = group.attrs;
  if (name in attrs) return attributeStrings(attrs[name]!.value);
  if (!(`${name}0` in attrs)) return undefined;
  const out: string[] = [];
  for (let chunk = 0; `${name}${chunk}` in attrs; chunk++) out.push(...attributeStrings(attrs[`${name}${chunk}`]!.value));
  return out;
}

let ready: Promise<unknown> | undefined;

/** Reads every weight of a Keras HDF5 weight file, keyed `<layer>/<weight>`, in layer order. */
export async function readKerasH5(file: string): Promise<TensorMap> {
  if (!existsSync(file)) throw new BadInputError(file, 'no such file');
  ready ??= h5wasm.ready;
  await ready;
  let h5: InstanceType<typeof h5wasm.File>;
  try {
    h5 = new h5wasm.File(file, 'r');
  } catch (err) {
    throw new BadInputError(file, `not a readable HDF5 file (${String(err)})`, { cause: err });
  }
  try {
    return collectWeights(h5, file);
  } finally {
    h5.close();
  }
}

function collectWeights(h5: InstanceType<typeof h5wasm.File>, file: string): TensorMap {
  let root: InstanceType<typeof h5wasm.Group> = h5;
  let layers = stringListAttribute(h5, 'layer_names');
  if (layers === undefined) {
    // A whole model saved with model.save(): the weights sit under /model_weights.
    const nested = h5.keys().includes('model_weights') ? h5.get('model_weights') : null;
    if (nested instanceof h5wasm.Group) {
      root = nested;
      layers = stringListAttribute(nested, 'layer_names');
    }
    if (layers === undefined) {
      throw new BadInputError(file, 'not a Keras weight file: no "layer_names" attribute on the root or /model_weights');
    }
  }
  const tensors: TensorMap = new Map();
  for (const layer of layers) {
    const group = root.get(layer);
    if (!(group instanceof h5wasm.Group)) {
      throw new BadInputError(file, `layer "${layer}" is listed in layer_names but has no group`);
    }
    const weightNames = stringListAttribute(group, 'weight_names') ?? [];
    for (const h5Name of weightNames) {
      const name = kerasWeightName(layer, h5Name);
      if (name === undefined) {
        throw new BadInputError(file, `layer "${layer}": weight name "${h5Name}" follows no Keras naming convention`);
      }
      const dataset = group.get(h5Name);
      if (!(dataset instanceof h5wasm.Dataset)) {
        throw new BadInputError(file, `layer "${layer}": weight "${h5Name}" is listed but has no dataset`);
      }
      const value = dataset.value;
      if (!ArrayBuffer.isView(value) || value instanceof BigInt64Array || value instanceof BigUint64Array) {
        throw new BadInputError(file, `layer "${layer}": weight "${h5Name}" is not a numeric array (dtype ${JSON.stringify(dataset.dtype)})`);
      }
      if (tensors.has(name)) throw new BadInputError(file, `two weights of layer "${layer}" map to "${name}"`);
      const data = value instanceof Float32Array ? value : Float32Array.from(value as ArrayLike<number>);
      tensors.set(name, { shape: [...(dataset.shape ?? [])], data });
    }
  }
  return tensors;
}
