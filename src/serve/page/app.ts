// The screening page. The model runs here, in the browser, with TF.js: files are read locally and
// never sent anywhere. Everything that decides is shared with the CLI and the server: the file's
// type from its bytes, the video sampling rule and ffmpeg command (run by ffmpeg.wasm), the one
// resize, and the decision core (src/decision/core.ts: guard, members, ensemble, video decision,
// Grad-CAM). The model and the decision run in a worker (model_worker.ts), so the page never
// freezes; this file only wires the page: start the worker, read a dropped file, show progress and
// the result, cancel.
import { startAdaptPanel } from './adapt_panel.js';
import { CancelledError, startModelWorker, type ModelClient } from './model_client.js';
import { readInput } from './frames.js';
import { clearResult, setProgress, setStatus, showResult } from './render.js';
import { registerOffline } from './offline.js';
import type { AdaptedSummary, ModelInfo } from './worker_protocol.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

let model: ModelClient | undefined;
/** Bumped by every new file and by Cancel: an analysis still running for an older one shows nothing. */
let generation = 0;
/** Stops the analysis in progress (the worker's job, when it has one). */
let stopCurrent: (() => void) | undefined;

function setWorking(working: boolean): void {
  $<HTMLButtonElement>('cancel').hidden = !working;
  if (!working) setProgress(undefined);
}

async function analyse(file: File, mine: number): Promise<void> {
  if (!model) return;
  const { meta } = model.info;
  const started = performance.now();
  setStatus(`Analysing ${file.name} on this device…`);
  const input = await readInput(file, (line) => {
    if (mine === generation) setStatus(line);
  });
  if (mine !== generation) return;
  const count = 'image' in input.source ? 1 : input.source.frames.length;
  setStatus(`Classifying ${count} frame${count === 1 ? '' : 's'} of ${file.name}…`);
  setProgress(0, count);
  const job = model.decide(input.source, input.kind, (done, total) => {
    if (mine !== generation) return;
    setStatus(`Classifying frame ${done} of ${total} of ${file.name}…`);
    setProgress(done, total);
  });
  const client = model;
  stopCurrent = () => client.cancel(job.id);
  // The video decision as `predict` makes it by default (mean probability); Grad-CAM always.
  const { output, frames } = await job.done;
  if (mine !== generation) return;
  stopCurrent = undefined;
  const { kind, ...rest } = output.result;
  const json = { file: file.name, kind, format: input.type.format, ...rest };
  const seconds = (performance.now() - started) / 1000 - input.decoderLoadSeconds;
  setWorking(false);
  const shown = { fileName: file.name, classes: meta.classes, inputSize: meta.cfg.inputSize, frames, output, json, seconds, decoderLoadSeconds: input.decoderLoadSeconds };
  if (!(await showResult(shown, () => mine === generation))) return;
  document.body.dataset['state'] = 'done';
  setStatus('Done. Nothing was uploaded.');
}

/** Stops what runs now; nothing of it is shown afterwards. */
function stop(): void {
  generation++;
  stopCurrent?.();
  stopCurrent = undefined;
}

function handle(file: File | undefined): void {
  if (!file) return;
  stop();
  const mine = generation;
  // The previous result goes first: it must never be read as this file's.
  clearResult();
  document.body.dataset['state'] = 'working';
  setWorking(true);
  analyse(file, mine).catch((err: unknown) => {
    if (mine !== generation || err instanceof CancelledError) return;
    setWorking(false);
    clearResult();
    document.body.dataset['state'] = 'error';
    // Each error names the file, as predict's do (a model-output error names the member instead).
    const message = (err as Error).message;
    setStatus(message.startsWith(`${file.name}:`) ? message : `${file.name}: ${message}`, true);
  });
}

function cancel(): void {
  if (document.body.dataset['state'] !== 'working') return;
  stop();
  setWorking(false);
  clearResult();
  document.body.dataset['state'] = 'cancelled';
  setStatus('Cancelled: no result.');
}

/** The model-info line: what runs the model, and on how many threads (and why not more). */
function describeModel(info: ModelInfo): string {
  const { meta } = info;
  const threads = `${info.threads} thread${info.threads === 1 ? '' : 's'}`;
  const isolation = info.crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated';
  const runtime = info.backend === 'wasm' ? `TF.js wasm${info.simd ? ' SIMD' : ''}, ${threads} (${isolation})` : `TF.js ${info.backend}`;
  // float32 goes unsaid; smaller storage is said, since the weights were rounded (export --weights-dtype).
  const weights = info.weightsDtype === 'float32' ? '' : `, ${info.weightsDtype} weights`;
  return `Model "${meta.name}" — ${meta.classes.join(' / ')} — ${meta.members.length} member(s)${info.sharedTrunk ? ' sharing one frozen backbone' : ''}${weights}, ${meta.cfg.inputSize.join('×')} input, ${runtime}`;
}

/** The line under the model's: whether the model in use was adapted in this browser, and how it did. */
function showAdapted(summary: AdaptedSummary | undefined): void {
  const line = $('adapted-info');
  line.hidden = !summary;
  document.body.dataset['adapted'] = String(Boolean(summary));
  if (!summary) return;
  const mode = summary.mode === 'head' ? 'head' : 'new layer';
  line.textContent = `Adapted in this browser on ${summary.createdAt.slice(0, 10)} (${mode}, ${summary.trainFrames} frames): held-back frame accuracy ${summary.before.toFixed(2)} → ${summary.after.toFixed(2)}.`;
}

async function start(): Promise<void> {
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    handle(e.dataTransfer?.files[0]);
  });
  $<HTMLInputElement>('file-input').addEventListener('change', (e) => {
    const inputEl = e.target as HTMLInputElement;
    handle(inputEl.files?.[0]);
    inputEl.value = ''; // the same file chosen again is analysed again
  });
  $('cancel').addEventListener('click', cancel);
  try {
    // ?threads=N caps the model's threads: on a busy machine one thread can be the faster (README).
    const threads = Number(new URLSearchParams(location.search).get('threads')) || undefined;
    model = await startModelWorker(new URL('./', document.baseURI).href, threads);
    const { info } = model;
    $('model-info').textContent = describeModel(info);
    document.body.dataset['threads'] = String(info.threads);
    document.body.dataset['sharedWeights'] = String(info.sharedWeights);
    document.body.dataset['isolated'] = String(info.crossOriginIsolated);
    // Each load step's end in ms since this page's navigation began (bench/page.ts reads it).
    const steps = Object.entries(info.loadTimings).map(([step, at]) => [step, Math.round(at - performance.timeOrigin)]);
    steps.push(['readyMessage', Math.round(performance.now())]);
    if (info.unchecked) setStatus(`Warning: the model files were not checked for damage (${info.unchecked}).`, true);
    if (info.adaptProblem) setStatus(`Warning: ${info.adaptProblem}.`, true);
    showAdapted(info.adapted);
    const panel = startAdaptPanel(model, (summary) => {
      showAdapted(summary);
      panel.showAdapted(summary);
    });
    steps.push(['pageReady', Math.round(performance.now())]);
    document.body.dataset['loadTimings'] = JSON.stringify(Object.fromEntries(steps));
    document.body.dataset['ready'] = 'true';
  } catch (err) {
    $('model-info').textContent = `Model could not be loaded: ${(err as Error).message}`;
    setStatus('The model folder (pocovid.json, member-*/) must sit next to this page.', true);
  } finally {
    // Only now: the service worker's install copies the page, TF.js and the model into its cache,
    // and doing that during the first load competed with it for the network and both cores.
    registerOffline();
  }
}

void start();
