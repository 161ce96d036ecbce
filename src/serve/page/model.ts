// The model folder next to the page, loaded in the page's model worker (model_worker.ts):
// pocovid.json checked by the same schema as the CLI's, every member file checked against the
// sha256 pocovid.json records (as predict and serve check them), every member as a TF.js layers
// model, and each member's forward pass on TF.js for the decision core (src/decision/core.ts),
// with the folder's guard and conformal calibration as predict and serve use them.
// No DOM here: URLs are resolved against the folder the caller names (`base`).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { AdaptedModelKey } from '../../adapt/record.js';
import { registerGradients } from '../../engine/gradients.js';
import { registerWasmKernels } from '../../engine/kernels/index.js';
import { guardFrameSide, storedGuard, type DecisionModel } from '../../decision/core.js';
import { checkWeightBytes, weightFileNames, type LayersFiles } from '../../model_dir/layers_io.js';
import { buildMemberModels } from '../../model_dir/member_models.js';
import { parseModelMeta, type ModelDirMeta } from '../../model_dir/meta.js';
import { SHARED_WEIGHTS_PATH } from '../../model_dir/names.js';
import { storedWeightDtype } from '../../model_dir/weight_dtype.js';
import type { FrameSizes } from './decision_frames.js';
import { memberForwards, pageMember, type PageMember } from './member_forwards.js';
import { digestProblem } from '../../util/digest_rule.js';

export interface PageModel {
  meta: ModelDirMeta;
  decision: DecisionModel;
  /** The model's input size and the guard's own frame side (undefined: it scores the model's frames). */
  sizes: FrameSizes;
  /** Why the member files could not be checked against their digests, when they could not. */
  unchecked?: string;
  /** How the members' weights are stored (export --weights-dtype): float32, float16, uint8 or mixed. */
  weightsDtype: string;
  /** The members in use with their cuts (the decision's `members` are their flat models). */
  pageMembers: PageMember[];
  /** Whether the members share their frozen backbone, which then runs once per frame (member_forwards.ts). */
  sharedTrunk: boolean;
  /** Weights every shipped member reads from the folder's shared-weights.bin (see FetchedModel). */
  sharedWeightNames: Set<string>;
  /** Each member's files as served: what an adaptation starts from, and what a reset goes back to. */
  memberFiles: LayersFiles[];
  /** Which model this is, for the adaptations kept in the browser (src/adapt/record.ts). */
  key: AdaptedModelKey;
}

function hex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A fetch for TF.js that checks each member file against the sha256 and size pocovid.json records:
 * a damaged weights file must not load as a model. undefined (with the reason) when the files
 * cannot be checked: an older folder records no digests, and browsers offer sha256 only to pages
 * served over HTTPS or from localhost.
 */
function checkedFetch(meta: ModelDirMeta, base: string): { fetchFunc?: typeof fetch; unchecked?: string } {
  if (!meta.files) return { unchecked: 'pocovid.json records no digests' };
  if (!globalThis.crypto?.subtle) return { unchecked: 'this browser checks them only over HTTPS or localhost' };
  const files = meta.files;
  const fetchFunc = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, init);
    if (!response.ok) return response;
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url, base);
    // The file's path in the folder, as pocovid.json records it ("member-0/weights.bin", "shared-weights.bin").
    const rel = url.href.startsWith(base) ? url.pathname.slice(new URL(base).pathname.length) : url.pathname.split('/').slice(-2).join('/');
    const data = await response.arrayBuffer();
    const expected = files[rel];
    if (!expected) throw new Error(`${rel}: not recorded in pocovid.json: the folder was changed after it was written`);
    const problem = digestProblem({ sha256: hex(await crypto.subtle.digest('SHA-256', data)), bytes: data.byteLength }, expected, 'pocovid.json');
    if (problem) throw new Error(`${rel}: ${problem}; export the model again`);
    return new Response(data, { status: response.status, headers: response.headers });
  };
  return { fetchFunc };
}

export interface BackendInfo {
  backend: 'wasm' | 'cpu';
  /** Threads of the wasm backend's pool (1 unless the page is cross-origin isolated). */
  threads: number;
  simd: boolean;
}

/**
 * Runs `f` (the wasm backend's start) with navigator.hardwareConcurrency reading `count`, when
 * `apply`. TF.js 4.22's wasm backend caps its XNNPACK pool at hardwareConcurrency / 2 whatever
 * setThreadsCount asks (it assumes two hyperthreads per core: backend.cc's num_cores, read once
 * when the module starts), which leaves a 2-core laptop or VM on one thread. Measured in headless
 * Chromium on 2 cores: getThreadsCount() 1 without this, 2 with it. The real value comes back
 * as soon as the backend has started.
 */
async function withCoreCount<T>(count: number, apply: boolean, f: () => Promise<T>): Promise<T> {
  if (!apply) return f();
  Object.defineProperty(navigator, 'hardwareConcurrency', { value: count, configurable: true });
  try {
    return await f();
  } finally {
    delete (navigator as { hardwareConcurrency?: number }).hardwareConcurrency;
  }
}

/**
 * TF.js on wasm (SIMD, and threads where the page is cross-origin isolated, at most `maxThreads`:
 * the page's ?threads=N), else the pure-JS cpu
 * backend. wasm is ~40× faster than cpu; its .wasm files sit next to the page (`base`).
 * TF.js rather than onnxruntime-web for the forward pass: measured in headless Chromium, ORT Web
 * is not clearly faster and would add a 14 MB runtime plus a second copy of the weights (Grad-CAM
 * needs the TF.js model anyway). Numbers and the command: docs/browser-runtime.md.
 */
export async function initBackend(base: string, maxThreads?: number): Promise<BackendInfo> {
  try {
    setWasmPaths(base);
    // Threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages
    // (COOP + COEP headers, README). The page asks for every logical core (the main thread is idle
    // while the model runs), at most 8 (the pool TF.js spawns).
    const cores = Math.max(1, navigator.hardwareConcurrency || 1);
    const threads = globalThis.crossOriginIsolated ? Math.max(1, Math.min(8, cores, maxThreads ?? cores)) : 1;
    if (threads > 1) setThreadsCount(threads);
    if (await withCoreCount(2 * cores, threads > 1, () => tf.setBackend('wasm'))) {
      // The gradient kernels TF.js's wasm backend lacks or gets wrong, and the fused batch-norm
      // gradient, as the Node engine registers them (src/engine): "Adapt to my data" trains here.
      registerWasmKernels();
      registerGradients();
      const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
      return { backend: 'wasm', threads: getThreadsCount(), simd };
    }
  } catch {
    // fall through to cpu
  }
  await tf.setBackend('cpu');
  return { backend: 'cpu', threads: 1, simd: false };
}

/** A model folder's files, fetched and checked; building the members from them needs the backend. */
export interface FetchedModel {
  meta: ModelDirMeta;
  /** pocovid.json as served (the adaptations' key is its digest). */
  metaBytes: ArrayBuffer;
  memberFiles: LayersFiles[];
  unchecked?: string;
  weightsDtype: string;
  /** Weights every member reads from the folder's shared-weights.bin: the same checked bytes. */
  sharedWeightNames: Set<string>;
}

/** The names of a model.json's weights stored in the folder's shared file. */
function namesInSharedFile(modelJson: { weightsManifest?: { paths: string[]; weights: { name: string }[] }[] }): Set<string> {
  return new Set((modelJson.weightsManifest ?? []).filter((group) => group.paths.includes(SHARED_WEIGHTS_PATH)).flatMap((group) => group.weights.map((w) => w.name)));
}

/**
 * Fetches and checks the model folder at `base` (a URL ending in '/'): pocovid.json, then each
 * member's model.json and weights. No TF.js backend is needed, so the worker runs it while the
 * wasm backend starts.
 */
export async function fetchPageModel(base: string): Promise<FetchedModel> {
  const response = await fetch(new URL('pocovid.json', base));
  if (!response.ok) throw new Error(`pocovid.json: HTTP ${response.status}`);
  const metaBytes = await response.arrayBuffer();
  let meta: ModelDirMeta;
  try {
    meta = parseModelMeta(JSON.parse(new TextDecoder().decode(metaBytes)));
  } catch (err) {
    throw new Error(`pocovid.json: ${(err as Error).message}`);
  }
  const { fetchFunc: checked, unchecked } = checkedFetch(meta, base);
  // Each file once, whoever names it (every member names shared-weights.bin): its bytes are read
  // once and every member's files hold the same bytes, as readMemberFiles gives them in Node.
  const bytes = new Map<string, Promise<Uint8Array>>();
  const bytesOf = (url: URL, rel: string): Promise<Uint8Array> => {
    let read = bytes.get(url.href);
    if (!read) {
      read = (checked ?? fetch)(url).then(async (response) => {
        if (!response.ok) throw new Error(`${rel}: HTTP ${response.status}`);
        return new Uint8Array(await response.arrayBuffer());
      });
      bytes.set(url.href, read);
    }
    return read;
  };
  // Each member is read into memory as its files: an adaptation (src/adapt) rebuilds members from
  // the same files, with a new layer or new head weights. The members are fetched side by side.
  const memberFiles: LayersFiles[] = await Promise.all(
    meta.members.map(async (member): Promise<LayersFiles> => {
      const where = `${member}/model.json`;
      const memberBase = new URL(`${member}/`, base);
      // A failed fetch names its file itself; what is wrong inside model.json is prefixed here.
      const text = new TextDecoder().decode(await bytesOf(new URL('model.json', memberBase), where));
      let modelJson: tf.io.ModelJSON;
      let names: string[];
      try {
        modelJson = JSON.parse(text) as tf.io.ModelJSON;
        names = weightFileNames(modelJson);
      } catch (err) {
        throw new Error(`${where}: ${(err as Error).message}`);
      }
      const weightFiles = new Map(await Promise.all(names.map(async (name) => [name, await bytesOf(new URL(name, memberBase), `${member}/${name}`)] as const)));
      const files = { modelJson, weightFiles };
      try {
        checkWeightBytes(files);
      } catch (err) {
        throw new Error(`${where}: ${(err as Error).message}`);
      }
      return files;
    }),
  );
  // How the weights are stored, and which of them every member reads from the shared file.
  const stored = new Set(memberFiles.map((files) => storedWeightDtype(files.modelJson)));
  const sharedByMember = memberFiles.map((files) => namesInSharedFile(files.modelJson));
  const sharedWeightNames = new Set([...(sharedByMember[0] ?? [])].filter((name) => sharedByMember.every((names) => names.has(name))));
  return { meta, metaBytes, memberFiles, ...(unchecked ? { unchecked } : {}), weightsDtype: stored.size === 1 ? [...stored][0]! : 'mixed', sharedWeightNames };
}

/** Builds the fetched members on the current backend, with their forward passes for the decision core. */
export async function buildPageModel(fetched: FetchedModel): Promise<PageModel> {
  const { meta, memberFiles } = fetched;
  // A backbone every member reads from shared-weights.bin is built once (member_models.ts).
  const members = await buildMemberModels(memberFiles, fetched.sharedWeightNames);
  const [height, width] = meta.cfg.inputSize;
  const shape: [number, number, number] = [height, width, meta.cfg.channels];
  const guardSide = guardFrameSide(meta.cfg, meta.guard ? 'stored' : 'none');
  const pageMembers = members.map(pageMember);
  const run = memberForwards(pageMembers, shape, fetched.sharedWeightNames);
  return {
    meta,
    decision: {
      classes: meta.classes,
      cfg: meta.cfg,
      members,
      forwards: run.forwards,
      ...(meta.guard ? { guard: storedGuard(meta.guard) } : {}),
      ...(meta.conformal ? { conformal: meta.conformal } : {}),
    },
    sizes: { input: meta.cfg.inputSize, ...(guardSide ? { guardSide } : {}) },
    ...(fetched.unchecked ? { unchecked: fetched.unchecked } : {}),
    weightsDtype: fetched.weightsDtype,
    pageMembers,
    sharedTrunk: run.sharedTrunk,
    sharedWeightNames: fetched.sharedWeightNames,
    memberFiles,
    key: { name: meta.name, key: await modelKey(fetched.metaBytes, meta) },
  };
}

/**
 * The model's identity for adaptations: the sha256 of its pocovid.json as served (it records every
 * member file's sha256, so another model or another export has another key). Without WebCrypto
 * (plain HTTP to another host) the name and creation time stand in.
 */
async function modelKey(metaBytes: ArrayBuffer, meta: ModelDirMeta): Promise<string> {
  if (globalThis.crypto?.subtle) return hex(await crypto.subtle.digest('SHA-256', metaBytes));
  return `${meta.name}@${meta.createdAt}`;
}
