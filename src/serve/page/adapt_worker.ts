// The model worker's side of "Adapt to my data": the site's files arrive one at a time (decoded on
// the main thread, as a file to classify is), are turned into model inputs by the decision's own
// steps (the one resize, the guard, the clip's sector), and wait here; on "adapt" the core
// (src/adapt/adapt.ts) trains and scores, and the adapted members replace the page's. The
// adaptation is kept in IndexedDB (adapt_store.ts), exported and loaded as a file, or reset to the
// shipped model. Nothing here touches the network.
import { adaptableMember, adaptModel, setTrainedWeights, type AdaptableMember, type AdaptFile, type AdaptResult, type AdaptSettings } from '../../adapt/adapt.js';
import { ADAPTATION_FORMAT, ADAPTATION_VERSION, recordFromJson, recordToJson, type AdaptationRecord } from '../../adapt/record.js';
import { guardFrames } from '../../decision/core.js';
import type { ConformalCalibration } from '../../eval/conformal.js';
import { layersModelFromFiles } from '../../model_dir/layers_io.js';
import { clipInputs } from '../../models/preprocess.js';
import { forgetAdaptation, keepAdaptation, loadKeptAdaptation } from './adapt_store.js';
import { sourceFrames } from './decision_frames.js';
import { disposeBuiltModel } from '../../models/cut.js';
import { memberForwards, pageMember, type PageMember } from './member_forwards.js';
import type { PageModel } from './model.js';
import type { AdaptedSummary, DecideSource } from './worker_protocol.js';

/** Frames one adaptation may hold: each is a 224² float input (0.6 MB) until the adaptation runs. */
export const MAX_ADAPT_FRAMES = 1500;

interface Waiting {
  name: string;
  kind: 'image' | 'video';
  inputs: Float32Array[];
}

/** The files waiting to be adapted on, by the id the page gave them. */
const waiting = new Map<number, Waiting>();
/** The shipped model's calibration, restored by a reset. */
let shippedConformal: ConformalCalibration | undefined;
let adaptedRecord: AdaptationRecord | undefined;

const frameCount = (): number => [...waiting.values()].reduce((n, f) => n + f.inputs.length, 0);

/** What the page shows about the adapted model in use. */
export function adaptedSummary(): AdaptedSummary | undefined {
  if (!adaptedRecord) return undefined;
  const { result, createdAt } = adaptedRecord;
  return { createdAt, mode: result.settings.mode, trainFrames: result.trainFrames, heldOutFrames: result.heldOutFrames, before: result.before.accuracy, after: result.after.accuracy };
}

/** Puts `members` (adapted, or undefined for the shipped ones) and `conformal` in the decision. */
async function install(model: PageModel, members: AdaptableMember[] | undefined, conformal: ConformalCalibration | undefined): Promise<void> {
  const old = model.pageMembers;
  const next: PageMember[] = members ?? (await Promise.all(model.memberFiles.map(layersModelFromFiles))).map(pageMember);
  const [height, width] = model.meta.cfg.inputSize;
  // The shipped members read their common weights from the same checked bytes; adapted ones are compared.
  const run = memberForwards(next, [height, width, model.meta.cfg.channels], members ? undefined : model.sharedWeightNames);
  model.pageMembers = next;
  model.sharedTrunk = run.sharedTrunk;
  model.decision.members = next.map((m) => m.model);
  model.decision.forwards = run.forwards;
  if (conformal) model.decision.conformal = conformal;
  else delete model.decision.conformal;
  old.forEach(disposeBuiltModel);
}

/** Builds the members an adaptation record describes and puts them in use. */
async function apply(model: PageModel, record: AdaptationRecord): Promise<void> {
  if (record.members.length !== model.memberFiles.length) throw new Error(`the adaptation has ${record.members.length} member(s); this model has ${model.memberFiles.length}`);
  const members: AdaptableMember[] = [];
  try {
    for (const [m, files] of model.memberFiles.entries()) {
      const member = await adaptableMember(files, model.meta.cfg.classifier, record.result.settings.mode);
      members.push(member);
      setTrainedWeights(member, record.members[m]!);
    }
  } catch (err) {
    members.forEach(disposeBuiltModel);
    throw err;
  }
  await install(model, members, record.conformal);
  adaptedRecord = record;
}

/** At load: the shipped calibration is remembered, and an adaptation kept for this model is applied. */
export async function restoreKept(model: PageModel): Promise<string | undefined> {
  shippedConformal = model.decision.conformal;
  let kept: string | undefined;
  try {
    kept = await loadKeptAdaptation(model.key.key);
  } catch (err) {
    return `the adaptation kept in this browser could not be read (${(err as Error).message})`;
  }
  if (!kept) return undefined;
  try {
    await apply(model, recordFromJson(kept, 'the adaptation kept in this browser', model.key));
    return undefined;
  } catch (err) {
    return `${(err as Error).message}; the shipped model is used`;
  }
}

/** A labelled file's frames → model inputs, waiting for "adapt". Frames the guard flags are left out. */
export async function addFile(model: PageModel, id: number, name: string, kind: 'image' | 'video', source: DecideSource): Promise<{ frames: number; flagged: number }> {
  const frames = await sourceFrames(source, model.sizes);
  if (frameCount() + frames.length > MAX_ADAPT_FRAMES) throw new Error(`${name}: more than ${MAX_ADAPT_FRAMES} frames in all; adapt on fewer files at a time`);
  const guarded = await guardFrames(model.decision.guard, frames, model.meta.cfg);
  if (guarded.usable.length === 0) throw new Error(`${name}: ${guarded.summary?.reason ?? 'no frame'}: it does not look like lung ultrasound, so it is left out`);
  const [height, width] = model.meta.cfg.inputSize;
  // The sector is fitted on the whole clip, as the decision fits it (models/preprocess.ts).
  const inputs = clipInputs(frames.map((f) => ({ width, height, rgb: f.rgb })), model.meta.cfg);
  waiting.set(id, { name, kind, inputs: guarded.usable.map((i) => inputs[i]!) });
  return { frames: guarded.usable.length, flagged: frames.length - guarded.usable.length };
}

export function removeFiles(ids?: number[]): void {
  if (!ids) waiting.clear();
  else for (const id of ids) waiting.delete(id);
}

/** Adapts on the waiting files with the labels and groups the page gives; keeps the result. */
export async function adaptOnFiles(
  model: PageModel,
  files: { id: number; label: string; group: string }[],
  settings: AdaptSettings,
  onProgress: (stage: 'features' | 'training', done: number, total: number) => Promise<void>,
): Promise<{ result: AdaptResult; kept: boolean; keepProblem?: string }> {
  const given: AdaptFile[] = files.map((f) => {
    const file = waiting.get(f.id);
    if (!file) throw new Error(`file ${f.id} is not loaded for adapting; add it again`);
    return { name: file.name, kind: file.kind, label: f.label, group: f.group, inputs: file.inputs };
  });
  const adapted = await adaptModel(
    model.memberFiles,
    { classes: model.meta.classes, cfg: model.meta.cfg, ...(shippedConformal ? { conformal: shippedConformal } : {}) },
    given,
    settings,
    { onProgress, now: () => performance.now() },
  );
  const record: AdaptationRecord = {
    format: ADAPTATION_FORMAT,
    version: ADAPTATION_VERSION,
    model: model.key,
    createdAt: new Date().toISOString(),
    result: adapted.result,
    conformal: adapted.conformal,
    members: adapted.weights,
  };
  await install(model, adapted.members, adapted.conformal);
  adaptedRecord = record;
  try {
    await keepAdaptation(model.key.key, recordToJson(record));
    return { result: adapted.result, kept: true };
  } catch (err) {
    // Still in use for this visit; the page says it will be gone on reload.
    return { result: adapted.result, kept: false, keepProblem: (err as Error).message };
  }
}

/** The adapted model as the file the page offers to save. */
export function exportAdaptation(): string {
  if (!adaptedRecord) throw new Error('nothing to export: the model in use is the shipped one');
  return recordToJson(adaptedRecord);
}

/** An exported adaptation, loaded, checked against this model, applied and kept. */
export async function importAdaptation(model: PageModel, text: string, source: string): Promise<void> {
  const record = recordFromJson(text, source, model.key);
  await apply(model, record);
  await keepAdaptation(model.key.key, text);
}

/** Back to the shipped model, and the kept adaptation forgotten. */
export async function resetAdaptation(model: PageModel): Promise<void> {
  await forgetAdaptation(model.key.key);
  if (!adaptedRecord) return;
  await install(model, undefined, shippedConformal);
  adaptedRecord = undefined;
}
