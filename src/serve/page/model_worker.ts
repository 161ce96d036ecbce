// The page's model worker: TF.js, the model and the decision core run here, off the main thread,
// so that the page keeps answering (scrolling, the Cancel button) while a video is classified.
// Bundled by scripts/build-page.mjs as model-worker.js (a module worker). It decodes images
// (browser_image.ts), resizes the native frames (decision_frames.ts), calls the decision core
// exactly as `predict` does (decideFrames: guard, members, ensemble, video decision, Grad-CAM) one
// frame per forward pass so that progress is per frame, and checks for a cancel between frames.
import { defaultAdaptSettings } from '../../adapt/adapt.js';
import { classifierWidth } from '../../models/insert_layer.js';
import { ADAPTATION_FILE } from '../../adapt/record.js';
import { decideFrames } from '../../decision/core.js';
import { sourceFrames } from './decision_frames.js';
import { adaptedSummary, adaptOnFiles, addFile, exportAdaptation, importAdaptation, removeFiles, resetAdaptation, restoreKept } from './adapt_worker.js';
import { buildPageModel, fetchPageModel, initBackend, type PageModel } from './model.js';
import { transferList, type AdaptCall, type AdaptReplies, type FromWorker, type ToWorker } from './worker_protocol.js';

/** The worker's global scope, typed for what is used here (the project's lib is DOM, not WebWorker). */
const scope = globalThis as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};

class Cancelled extends Error {}

/** Now, in ms since the epoch (LoadTimings). */
const clock = (): number => performance.timeOrigin + performance.now();
/** Module code runs once every import above has been evaluated: the script's cost ends here. */
const scriptEvaluated = clock();

let model: PageModel | undefined;
/** Jobs queued or running, and those of them cancelled (a cancel for a finished job is dropped). */
const pending = new Set<number>();
const cancelled = new Set<number>();
/** Jobs run one after another: a cancelled one ends at its next frame, then the next starts. */
let queue: Promise<void> = Promise.resolve();

/** Lets queued messages (a cancel) in between frames: a wasm forward pass never yields by itself. */
function yieldToMessages(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

async function load(base: string, threads?: number): Promise<void> {
  try {
    // The model's files download and are checked while the wasm backend starts; then it is built.
    const timed = <T>(promise: Promise<T>): Promise<[T, number]> => promise.then((value) => [value, clock()]);
    const [[backend, backendReady], [fetched, filesFetched]] = await Promise.all([timed(initBackend(base, threads)), timed(fetchPageModel(base))]);
    model = await buildPageModel(fetched);
    const membersBuilt = clock();
    const adaptProblem = await restoreKept(model);
    const adapted = adaptedSummary();
    scope.postMessage({
      type: 'ready',
      info: {
        meta: model.meta,
        loadTimings: { workerCreated: performance.timeOrigin, scriptEvaluated, backendReady, filesFetched, membersBuilt, ready: clock() },
        ...backend,
        crossOriginIsolated: globalThis.crossOriginIsolated === true,
        weightsDtype: model.weightsDtype,
        sharedTrunk: model.sharedTrunk,
        sharedWeights: model.sharedWeightNames.size,
        ...(model.unchecked ? { unchecked: model.unchecked } : {}),
        ...(adapted ? { adapted } : {}),
        ...(adaptProblem ? { adaptProblem } : {}),
        adaptDefaults: { mode: defaultAdaptMode(model), settings: { head: adaptDefaults(model, 'head'), 'new-layer': adaptDefaults(model, 'new-layer') } },
      },
    });
  } catch (err) {
    scope.postMessage({ type: 'load-error', message: (err as Error).message ?? String(err) });
  }
}

/** Runs job `id`: its failure or cancel is answered as such, and it leaves the pending sets. */
async function job(id: number, work: (page: PageModel) => Promise<void>): Promise<void> {
  try {
    if (!model) throw new Error('the model is not loaded');
    if (cancelled.has(id)) throw new Cancelled();
    await work(model);
  } catch (err) {
    if (err instanceof Cancelled) scope.postMessage({ type: 'cancelled', id });
    else scope.postMessage({ type: 'error', id, message: (err as Error).message ?? String(err) });
  } finally {
    pending.delete(id);
    cancelled.delete(id);
  }
}

function decide(message: Extract<ToWorker, { type: 'decide' }>): Promise<void> {
  const { id, kind } = message;
  return job(id, async (model) => {
    const frames = await sourceFrames(message.source, model.sizes);
    const output = await decideFrames(model.decision, frames, kind, {
      heatmap: true,
      batchSize: 1,
      onProgress: async (done, total) => {
        scope.postMessage({ type: 'progress', id, done, total });
        await yieldToMessages();
        if (cancelled.has(id)) throw new Cancelled();
      },
    });
    // The guard's own copies stay here: the page draws only the model-size frames.
    const shown = frames.map(({ index, time, rgb }) => ({ index, time, rgb }));
    scope.postMessage({ type: 'result', id, output, frames: shown }, transferList([...shown.map((f) => f.rgb), ...(output.heatmapRgb ? [output.heatmapRgb] : [])]));
  });
}

/** The default settings of a mode for this model (its classifier's width sets the new layer's rate). */
function adaptDefaults(page: PageModel, mode: 'head' | 'new-layer'): ReturnType<typeof defaultAdaptSettings> {
  return defaultAdaptSettings(mode, classifierWidth(page.memberFiles[0]!, page.meta.cfg.classifier));
}

/** The mode offered first: the head, unless the model trained every layer (no frozen part to keep). */
function defaultAdaptMode(page: PageModel): 'head' | 'new-layer' {
  return page.pageMembers[0]?.backbone ? 'head' : 'new-layer';
}

/** One "Adapt to my data" call (adapt_worker.ts), answered with a 'reply'. */
function adapt(message: AdaptCall): Promise<void> {
  const { id } = message;
  const reply = <K extends AdaptCall['type']>(_type: K, value: AdaptReplies[K]): void => scope.postMessage({ type: 'reply', id, value });
  return job(id, async (model) => {
    const summary = (): { adapted?: ReturnType<typeof adaptedSummary> } => {
      const adapted = adaptedSummary();
      return adapted ? { adapted } : {};
    };
    switch (message.type) {
      case 'adapt-add':
        reply(message.type, await addFile(model, id, message.name, message.kind, message.source));
        break;
      case 'adapt-remove':
        removeFiles(message.files);
        reply(message.type, null);
        break;
      case 'adapt-run': {
        const ran = await adaptOnFiles(model, message.files, { ...adaptDefaults(model, message.settings.mode ?? defaultAdaptMode(model)), ...message.settings }, async (stage, done, total) => {
          scope.postMessage({ type: 'progress', id, done, total, stage });
          await yieldToMessages();
          if (cancelled.has(id)) throw new Cancelled();
        });
        reply(message.type, { ...ran, ...summary() });
        break;
      }
      case 'adapt-export':
        reply(message.type, { json: exportAdaptation(), fileName: ADAPTATION_FILE });
        break;
      case 'adapt-import':
        await importAdaptation(model, message.text, message.source);
        reply(message.type, summary());
        break;
      case 'adapt-reset':
        await resetAdaptation(model);
        reply(message.type, summary());
        break;
    }
  });
}

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === 'load') queue = queue.then(() => load(message.base, message.threads));
  else if (message.type === 'cancel') {
    if (pending.has(message.id)) cancelled.add(message.id);
  } else if (message.type === 'decide') {
    pending.add(message.id);
    queue = queue.then(() => decide(message));
  } else {
    pending.add(message.id);
    queue = queue.then(() => adapt(message));
  }
};
