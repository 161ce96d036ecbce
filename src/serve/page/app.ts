// The screening page. The model runs here, in the browser, with TF.js: files are read locally and
// never sent anywhere. Everything that decides is shared with the CLI and the server: the file's
// type from its bytes, the video sampling rule and ffmpeg command (run by ffmpeg.wasm), the one
// resize, and the decision core (src/decision/core.ts: guard, members, ensemble, video decision,
// Grad-CAM). This file only wires the page: load the model, read a dropped file, show the result.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { decideFrames } from '../../decision/core.js';
import { readInput } from './frames.js';
import { loadPageModel, type PageModel } from './model.js';
import { clearResult, setStatus, showResult } from './render.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

let model: PageModel | undefined;
/** Bumped by every new file: an analysis still running for an older one shows nothing. */
let generation = 0;

async function initBackend(): Promise<string> {
  // wasm is ~40× faster than the pure-JS cpu backend; its .wasm files sit next to app.js.
  // TF.js rather than onnxruntime-web for the forward pass: measured in headless Chromium, ORT Web
  // is not clearly faster and would add a 14 MB runtime plus a second copy of the weights (Grad-CAM
  // needs the TF.js model anyway). Numbers and the command: docs/browser-runtime.md.
  try {
    setWasmPaths(new URL('./', document.baseURI).href);
    if (await tf.setBackend('wasm')) return 'wasm';
  } catch {
    // fall through to cpu
  }
  await tf.setBackend('cpu');
  return 'cpu';
}

async function analyse(file: File, mine: number): Promise<void> {
  if (!model) return;
  const { meta, decision } = model;
  const started = performance.now();
  setStatus(`Analysing ${file.name} on this device…`);
  const input = await readInput(file, { input: meta.cfg.inputSize, ...(model.guardSide ? { guardSide: model.guardSide } : {}) }, (line) => {
    if (mine === generation) setStatus(line);
  });
  if (mine !== generation) return;
  setStatus(`Classifying ${input.frames.length} frame${input.frames.length === 1 ? '' : 's'} of ${file.name}…`);
  // The video decision as `predict` makes it by default (mean probability); Grad-CAM always.
  const output = await decideFrames(decision, input.frames, input.kind, { heatmap: true });
  if (mine !== generation) return;
  const { kind, ...rest } = output.result;
  const json = { file: file.name, kind, format: input.type.format, ...rest };
  const seconds = (performance.now() - started) / 1000 - input.decoderLoadSeconds;
  showResult({ fileName: file.name, classes: meta.classes, inputSize: meta.cfg.inputSize, frames: input.frames, output, json, seconds, decoderLoadSeconds: input.decoderLoadSeconds });
  document.body.dataset['state'] = 'done';
  setStatus('Done. Nothing was uploaded.');
}

function handle(file: File | undefined): void {
  if (!file) return;
  const mine = ++generation;
  // The previous result goes first: it must never be read as this file's.
  clearResult();
  document.body.dataset['state'] = 'working';
  analyse(file, mine).catch((err: unknown) => {
    if (mine !== generation) return;
    clearResult();
    document.body.dataset['state'] = 'error';
    // Each error names the file, as predict's do (a model-output error names the member instead).
    const message = (err as Error).message;
    setStatus(message.startsWith(`${file.name}:`) ? message : `${file.name}: ${message}`, true);
  });
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
  try {
    const backend = await initBackend();
    model = await loadPageModel();
    const { meta } = model;
    $('model-info').textContent = `Model "${meta.name}" — ${meta.classes.join(' / ')} — ${meta.members.length} member(s), ${meta.cfg.inputSize.join('×')} input, TF.js ${backend}`;
    if (model.unchecked) setStatus(`Warning: the model files were not checked for damage (${model.unchecked}).`, true);
    document.body.dataset['ready'] = 'true';
  } catch (err) {
    $('model-info').textContent = `Model could not be loaded: ${(err as Error).message}`;
    setStatus('The model folder (pocovid.json, member-*/) must sit next to this page.', true);
  }
}

void start();
