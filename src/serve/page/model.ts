// The model folder next to the page, loaded into the browser: pocovid.json checked by the same
// schema as the CLI's, every member file checked against the sha256 pocovid.json records (as
// predict and serve check them), every member as a TF.js layers model, and each member's forward
// pass on TF.js for the decision core (src/decision/core.ts).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { MemberForward } from '../../decision/classify.js';
import { guardFrameSide, storedGuard, type DecisionModel } from '../../decision/core.js';
import { parseModelMeta, type ModelDirMeta } from '../../model_dir/meta.js';
import { digestProblem } from '../../util/digest_rule.js';

export interface PageModel {
  meta: ModelDirMeta;
  decision: DecisionModel;
  /** Side of the frames the guard gets of its own (undefined: it scores the model's frames). */
  guardSide?: number;
  /** Why the member files could not be checked against their digests, when they could not. */
  unchecked?: string;
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
function checkedFetch(meta: ModelDirMeta): { fetchFunc?: typeof fetch; unchecked?: string } {
  if (!meta.files) return { unchecked: 'pocovid.json records no digests' };
  if (!globalThis.crypto?.subtle) return { unchecked: 'this browser checks them only over HTTPS or localhost' };
  const files = meta.files;
  const fetchFunc = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, init);
    if (!response.ok) return response;
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url, document.baseURI);
    const rel = url.pathname.split('/').slice(-2).join('/');
    const data = await response.arrayBuffer();
    const expected = files[rel];
    if (!expected) throw new Error(`${rel}: not recorded in pocovid.json: the folder was changed after it was written`);
    const problem = digestProblem({ sha256: hex(await crypto.subtle.digest('SHA-256', data)), bytes: data.byteLength }, expected, 'pocovid.json');
    if (problem) throw new Error(`${rel}: ${problem}; export the model again`);
    return new Response(data, { status: response.status, headers: response.headers });
  };
  return { fetchFunc };
}

function tfjsForward(model: tfl.LayersModel, shape: [number, number, number]): MemberForward {
  return async (batch, n) => {
    const y = tf.tidy(() => model.predict(tf.tensor4d(batch, [n, ...shape])) as tf.Tensor);
    try {
      return (await y.data()) as Float32Array;
    } finally {
      y.dispose();
    }
  };
}

export async function loadPageModel(): Promise<PageModel> {
  const response = await fetch('pocovid.json');
  if (!response.ok) throw new Error(`pocovid.json: HTTP ${response.status}`);
  let meta: ModelDirMeta;
  try {
    meta = parseModelMeta(await response.json());
  } catch (err) {
    throw new Error(`pocovid.json: ${(err as Error).message}`);
  }
  const { fetchFunc, unchecked } = checkedFetch(meta);
  const members: tfl.LayersModel[] = [];
  for (const member of meta.members) members.push(await tfl.loadLayersModel(`${member}/model.json`, fetchFunc ? { fetchFunc } : {}));
  const [height, width] = meta.cfg.inputSize;
  const shape: [number, number, number] = [height, width, meta.cfg.channels];
  const guardSide = guardFrameSide(meta.cfg, meta.guard ? 'stored' : 'none');
  return {
    meta,
    decision: {
      classes: meta.classes,
      cfg: meta.cfg,
      members,
      forwards: members.map((m) => tfjsForward(m, shape)),
      ...(meta.guard ? { guard: storedGuard(meta.guard) } : {}),
    },
    ...(guardSide ? { guardSide } : {}),
    ...(unchecked ? { unchecked } : {}),
  };
}
