// The model folder next to the page, loaded into the browser: pocovid.json checked by the same
// schema as the CLI's, every member as a TF.js layers model, and each member's forward pass on
// TF.js for the decision core (src/decision/core.ts).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { MemberForward } from '../../decision/classify.js';
import { guardFrameSide, storedGuard, type DecisionModel } from '../../decision/core.js';
import { parseModelMeta, type ModelDirMeta } from '../../model_dir/meta.js';

export interface PageModel {
  meta: ModelDirMeta;
  decision: DecisionModel;
  /** Side of the frames the guard gets of its own (undefined: it scores the model's frames). */
  guardSide?: number;
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
  const members: tfl.LayersModel[] = [];
  for (const member of meta.members) members.push(await tfl.loadLayersModel(`${member}/model.json`));
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
  };
}
