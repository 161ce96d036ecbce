// The screening page. The model runs here, in the browser, with TF.js: files are read locally
// (File → ImageBitmap / <video> → canvas) and never sent anywhere. It uses the same modules as the
// CLI and server for preprocessing (pixelsToInput), ensembling/uncertainty and Grad-CAM.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { gradCam } from '../../explain/gradcam.js';
import { overlayMap, rgbaToRgb, rgbToRgba } from '../../explain/overlay.js';
import { classifyInputs } from '../../infer/classify.js';
import { checkFrame } from '../../guard/guard.js';
import { GUARD_SIZE } from '../../guard/features.js';
import { argMax, decide, type FrameScores } from '../../infer/combine.js';
import type { ModelDirMeta } from '../../infer/model_dir.js';
import { clipInputs } from '../../models/preprocess.js';
import { digestProblem } from '../../util/digest_rule.js';

const VIDEO_FPS = 3;
const VIDEO_MAX_FRAMES = 30;
const CLASS_COLOURS: Record<string, string> = { covid: '#c0392b', pneumonia: '#d68910', regular: '#1e8449', viral: '#7d3c98' };
const FALLBACK_COLOURS = ['#2e86c1', '#884ea0', '#17a589', '#ca6f1e'];

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

interface Loaded {
  meta: ModelDirMeta;
  members: tfl.LayersModel[];
  /** Why the member files could not be checked against their digests, when they could not. */
  unchecked?: string;
}

let loaded: Loaded | undefined;

function colourOf(cls: string, index: number): string {
  return CLASS_COLOURS[cls] ?? FALLBACK_COLOURS[index % FALLBACK_COLOURS.length]!;
}

function setStatus(text: string, error = false): void {
  const status = $('status');
  status.textContent = text;
  status.classList.toggle('error', error);
}

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

function hex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A fetch for TF.js that checks each member file against the sha256 and size pocovid.json records,
 * as predict and serve do: a damaged weights file must not load as a model. undefined (with the
 * reason) when the files cannot be checked: an older folder records no digests, and browsers
 * offer sha256 only to pages served over HTTPS or from localhost.
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

async function loadModel(): Promise<Loaded> {
  const response = await fetch('pocovid.json');
  if (!response.ok) throw new Error(`pocovid.json: HTTP ${response.status}`);
  const meta = (await response.json()) as ModelDirMeta;
  if (meta.format !== 'pocovid-model') throw new Error('pocovid.json is not a pocovid model description');
  const { fetchFunc, unchecked } = checkedFetch(meta);
  const members: tfl.LayersModel[] = [];
  for (const member of meta.members) members.push(await tfl.loadLayersModel(`${member}/model.json`, fetchFunc ? { fetchFunc } : {}));
  return { meta, members, ...(unchecked ? { unchecked } : {}) };
}

/** Draws a source into an input-size canvas (stretched, as the CLI does) and returns its RGB pixels. */
function grabRgb(source: CanvasImageSource, width: number, height: number): Uint8Array {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, width, height);
  return rgbaToRgb(ctx.getImageData(0, 0, width, height).data);
}

function isVideo(file: File): boolean {
  return file.type.startsWith('video/') || /\.(mp4|m4v|mov|webm|mkv|avi|mpe?g)$/i.test(file.name);
}

/** A frame at the model's input size, and at GUARD_SIZE² when the guard needs its own copy. */
interface PageFrame {
  rgb: Uint8Array;
  time: number;
  guardRgb?: Uint8Array;
}

async function imageFrames(file: File, width: number, height: number, guardSide?: number): Promise<PageFrame[]> {
  const bitmap = await createImageBitmap(file).catch(() => {
    throw new Error(`${file.name}: this browser cannot decode it as an image`);
  });
  const rgb = grabRgb(bitmap, width, height);
  const guardRgb = guardSide ? grabRgb(bitmap, guardSide, guardSide) : undefined;
  bitmap.close();
  return [{ rgb, time: 0, ...(guardRgb ? { guardRgb } : {}) }];
}

async function videoFrames(file: File, width: number, height: number, guardSide?: number): Promise<PageFrame[]> {
  const video = document.createElement('video');
  video.muted = true;
  video.preload = 'auto';
  const url = URL.createObjectURL(file);
  try {
    video.src = url;
    await new Promise<void>((resolve, reject) => {
      video.onloadeddata = () => resolve();
      video.onerror = () => reject(new Error(`${file.name}: this browser cannot play this video`));
    });
    const frames: PageFrame[] = [];
    const duration = Number.isFinite(video.duration) ? video.duration : 0;
    for (let i = 0; i < VIDEO_MAX_FRAMES; i++) {
      const time = i / VIDEO_FPS;
      if (i > 0 && time >= duration) break;
      await new Promise<void>((resolve) => {
        video.onseeked = () => resolve();
        video.currentTime = time;
      });
      const guardRgb = guardSide ? grabRgb(video, guardSide, guardSide) : undefined;
      frames.push({ rgb: grabRgb(video, width, height), time, ...(guardRgb ? { guardRgb } : {}) });
      setStatus(`Reading frame ${i + 1}…`);
    }
    return frames;
  } finally {
    URL.revokeObjectURL(url);
  }
}

function paint(canvas: HTMLCanvasElement, rgb: Uint8Array | Uint8ClampedArray, width: number, height: number): void {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d')!.putImageData(new ImageData(rgbToRgba(rgb), width, height), 0, 0);
}

function renderBars(classes: string[], probabilities: number[]): void {
  const bars = $('bars');
  bars.replaceChildren(
    ...classes.map((cls, i) => {
      const row = document.createElement('div');
      row.className = 'row prob-row';
      row.dataset['class'] = cls;
      row.dataset['value'] = String(probabilities[i]);
      const pct = (100 * probabilities[i]!).toFixed(1);
      row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value">${pct}%</span>`;
      row.querySelector('.name')!.textContent = cls;
      const fill = row.querySelector<HTMLElement>('.fill')!;
      fill.style.width = `${pct}%`;
      fill.style.background = colourOf(cls, i);
      return row;
    }),
  );
}

function renderTimeline(classes: string[], frames: FrameScores[], times: number[]): void {
  const wrap = $('timeline-wrap');
  wrap.hidden = frames.length < 2;
  if (frames.length < 2) return;
  $('timeline').replaceChildren(
    ...frames.map((f, i) => {
      const column = document.createElement('div');
      column.className = 'frame';
      column.title = `${times[i]!.toFixed(2)} s: ${classes[argMax(f.probabilities)]}`;
      column.dataset['label'] = classes[argMax(f.probabilities)];
      for (const [c, p] of f.probabilities.entries()) {
        const seg = document.createElement('div');
        seg.style.height = `${100 * p}%`;
        seg.style.background = colourOf(classes[c]!, c);
        column.append(seg);
      }
      return column;
    }),
  );
  $('legend').replaceChildren(
    ...classes.map((cls, i) => {
      const item = document.createElement('span');
      item.textContent = cls;
      item.style.setProperty('--c', colourOf(cls, i));
      return item;
    }),
  );
}

async function analyse(file: File): Promise<void> {
  if (!loaded) return;
  const { meta, members } = loaded;
  const [height, width] = meta.cfg.inputSize;
  setStatus(`Analysing ${file.name} on this device…`);
  // An earlier file's result must not stay on screen while this one is analysed, or next to its error.
  $('result').hidden = true;
  delete document.body.dataset['result'];
  // As in the server's pipeline: a model input smaller than the guard's scale gets its own copy.
  const guardSide = meta.guard && (width < GUARD_SIZE || height < GUARD_SIZE) ? GUARD_SIZE : undefined;
  const allFrames = isVideo(file) ? await videoFrames(file, width, height, guardSide) : await imageFrames(file, width, height, guardSide);
  // The not-ultrasound guard stored with the model: flagged frames get no diagnosis, and an input
  // whose frames are mostly flagged gets none at all (the same rule as the server's pipeline).
  const verdicts = meta.guard
    ? allFrames.map((f) => (f.guardRgb ? checkFrame(f.guardRgb, GUARD_SIZE, GUARD_SIZE, meta.guard!) : checkFrame(f.rgb, width, height, meta.guard!)))
    : [];
  const frames = allFrames.filter((_, i) => !verdicts[i]?.flagged);
  const guardBox = $('guard');
  if (frames.length === 0 || frames.length * 2 < allFrames.length) {
    const reason = verdicts.find((v) => v.flagged)?.reason ?? 'not a lung-ultrasound image';
    guardBox.textContent = `No diagnosis: ${reason}.`;
    guardBox.hidden = false;
    $('result-file').textContent = file.name;
    $('label').textContent = 'no diagnosis';
    $('label').style.color = '';
    $('confidence').textContent = '';
    $('uncertainty').textContent = '';
    $('bars').replaceChildren();
    $('card-images').hidden = true;
    $('timeline-wrap').hidden = true;
    $('result').hidden = false;
    document.body.dataset['guard'] = 'flagged';
    setStatus('Done. Nothing was uploaded.');
    return;
  }
  guardBox.hidden = true;
  $('card-images').hidden = false;
  document.body.dataset['guard'] = 'passed';
  const inputs = clipInputs(frames.map((f) => ({ width, height, rgb: f.rgb })), meta.cfg);
  const shape: [number, number, number] = [height, width, meta.cfg.channels];
  const scores = classifyInputs(members, inputs, shape);
  const decision = decide(scores, meta.aggregation === 'vote' ? 'vote' : 'mean');
  const best = scores.reduce((b, s, i) => (s.probabilities[decision.classIndex]! > scores[b]!.probabilities[decision.classIndex]! ? i : b), 0);
  // Grad-CAM of the frame most typical of the decision, averaged over the ensemble members.
  const map = new Float32Array(width * height);
  tf.tidy(() => {
    const x = tf.tensor4d(inputs[best]!, [1, ...shape]);
    for (const m of members) gradCam(m, x, meta.cfg.camLayer, decision.classIndex).map.forEach((v, i) => (map[i]! += v / members.length));
  });
  const peak = map.reduce((a, b) => Math.max(a, b), 0);
  if (peak > 0) map.forEach((v, i) => (map[i] = v / peak));

  $('result-file').textContent = `${file.name}${frames.length > 1 ? ` — ${frames.length} frames at ${VIDEO_FPS}/s` : ''}`;
  $('label').textContent = meta.classes[decision.classIndex]!;
  $('label').style.color = colourOf(meta.classes[decision.classIndex]!, decision.classIndex);
  $('confidence').textContent = `(${(100 * decision.confidence).toFixed(1)}%)`;
  const u = decision.uncertainty;
  $('uncertainty').innerHTML = `Uncertainty <strong>${(100 * u.entropy).toFixed(0)}%</strong>` +
    (u.ensembleStd !== null ? `<br><span class="muted">ensemble spread ${(100 * u.ensembleStd).toFixed(1)}%</span>` : '');
  $('uncertainty').dataset['entropy'] = String(u.entropy);
  renderBars(meta.classes, decision.probabilities);
  paint($<HTMLCanvasElement>('frame-canvas'), frames[best]!.rgb, width, height);
  paint($<HTMLCanvasElement>('heatmap-canvas'), overlayMap(frames[best]!.rgb, width, height, map), width, height);
  renderTimeline(meta.classes, scores, frames.map((f) => f.time));
  $('result').hidden = false;
  setStatus('Done. Nothing was uploaded.');
}

function handle(file: File | undefined): void {
  if (!file) return;
  analyse(file).catch((err: unknown) => {
    document.body.dataset['result'] = 'error';
    // Each error names the file, as predict's do.
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
  $<HTMLInputElement>('file-input').addEventListener('change', (e) => handle((e.target as HTMLInputElement).files?.[0]));
  try {
    const backend = await initBackend();
    loaded = await loadModel();
    const { meta } = loaded;
    $('model-info').textContent = `Model "${meta.name}" — ${meta.classes.join(' / ')} — ${meta.members.length} member(s), ${meta.cfg.inputSize.join('×')} input, TF.js ${backend}`;
    if (loaded.unchecked) setStatus(`Warning: the model files were not checked for damage (${loaded.unchecked}).`, true);
    document.body.dataset['ready'] = 'true';
  } catch (err) {
    $('model-info').textContent = `Model could not be loaded: ${(err as Error).message}`;
    setStatus('The model folder (pocovid.json, member-*/) must sit next to this page.', true);
  }
}

void start();
