// The result card: cleared before every new file (a previous diagnosis must never sit under a new
// file's name), then filled from the decision core's result: label, probabilities, uncertainty and
// its warning, the conformal prediction set, the frame shown with its Grad-CAM, the per-frame timeline on a time axis, the time
// per frame, the guard's refusal with the input's thumbnail, and the result as JSON in the shape of
// one element of `pocovid predict --json` (data-testid="result-json").
import type { DecisionFrame, DecisionOutput, PredictionResult } from '../../decision/core.js';
import { setLine } from '../../decision/prediction_set.js';
import { rgbToRgba } from '../../explain/overlay.js';

const CLASS_COLOURS: Record<string, string> = { covid: '#c0392b', pneumonia: '#d68910', regular: '#1e8449', viral: '#7d3c98' };
const FALLBACK_COLOURS = ['#2e86c1', '#884ea0', '#17a589', '#ca6f1e'];

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

export function colourOf(cls: string, index: number): string {
  return CLASS_COLOURS[cls] ?? FALLBACK_COLOURS[index % FALLBACK_COLOURS.length]!;
}

/** A status line (the page's, or another such as the adaptation panel's `adapt-status`). */
export function setStatus(text: string, error = false, id = 'status'): void {
  const status = $(id);
  status.textContent = text;
  status.classList.toggle('error', error);
}

/** A progress bar (the status line's, or `id`): `done` of `total`, or hidden (undefined). */
export function setProgress(done: number | undefined, total = 0, id = 'progress'): void {
  const bar = $<HTMLProgressElement>(id);
  bar.hidden = done === undefined;
  if (done === undefined) return;
  bar.max = Math.max(1, total);
  bar.value = done;
}

function paint(canvas: HTMLCanvasElement, rgb: Uint8Array | Uint8ClampedArray, width: number, height: number): void {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d')!.putImageData(new ImageData(rgbToRgba(rgb), width, height), 0, 0);
}

function blank(canvas: HTMLCanvasElement): void {
  canvas.width = 0;
  canvas.height = 0;
}

/** Empties and hides the card: called first for every new file. */
export function clearResult(): void {
  $('result').hidden = true;
  for (const id of ['result-file', 'label', 'confidence', 'timing', 'uncertainty', 'prediction-set', 'warning', 'guard', 'result-json', 'frame-caption']) $(id).textContent = '';
  $('label').style.color = '';
  delete $('uncertainty').dataset['entropy'];
  delete $('prediction-set').dataset['decided'];
  $('prediction-set').hidden = true;
  $('warning').hidden = true;
  $('guard').hidden = true;
  $('bars').replaceChildren();
  $('timeline').replaceChildren();
  $('axis').replaceChildren();
  $('legend').replaceChildren();
  $('timeline-wrap').hidden = true;
  $('heatmap-figure').hidden = false;
  blank($<HTMLCanvasElement>('frame-canvas'));
  blank($<HTMLCanvasElement>('heatmap-canvas'));
  delete document.body.dataset['guard'];
}

function renderBars(classes: readonly string[], probabilities: Record<string, number>): void {
  $('bars').replaceChildren(
    ...classes.map((cls, i) => {
      const p = probabilities[cls]!;
      const row = document.createElement('div');
      row.className = 'row prob-row';
      row.dataset['class'] = cls;
      row.dataset['value'] = String(p);
      const pct = (100 * p).toFixed(1);
      row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value">${pct}%</span>`;
      row.querySelector('.name')!.textContent = cls;
      const fill = row.querySelector<HTMLElement>('.fill')!;
      fill.style.width = `${pct}%`;
      fill.style.background = colourOf(cls, i);
      return row;
    }),
  );
}

/** About `max` ticks at round frame positions, each labelled with its time. */
function tickFrames(count: number, max = 8): number[] {
  const step = Math.max(1, Math.ceil(count / max));
  const ticks: number[] = [];
  for (let i = 0; i < count; i += step) ticks.push(i);
  return ticks;
}

function renderTimeline(classes: readonly string[], result: PredictionResult): void {
  const frames = result.frames ?? [];
  if (frames.length < 2) return;
  $('timeline-wrap').hidden = false;
  const columns = `repeat(${frames.length}, minmax(3px, 1fr))`;
  $('timeline').style.gridTemplateColumns = columns;
  $('axis').style.gridTemplateColumns = columns;
  $('timeline').replaceChildren(
    ...frames.map((f) => {
      const column = document.createElement('div');
      column.className = 'frame';
      column.dataset['label'] = f.label ?? 'flagged';
      column.dataset['time'] = String(f.time);
      column.title = `${f.time.toFixed(2)} s: ${f.label ?? `no diagnosis (${f.guard?.reason ?? 'flagged'})`}`;
      if (f.label === null) column.classList.add('flagged');
      else {
        classes.forEach((c, k) => {
          const seg = document.createElement('div');
          seg.style.height = `${100 * f.probabilities[c]!}%`;
          seg.style.background = colourOf(c, k);
          column.append(seg);
        });
      }
      return column;
    }),
  );
  const ticks = new Set(tickFrames(frames.length));
  $('axis').replaceChildren(
    ...frames.map((f, i) => {
      const tick = document.createElement('span');
      if (ticks.has(i)) {
        tick.className = 'tick';
        tick.textContent = `${f.time.toFixed(1)}`;
      }
      return tick;
    }),
  );
  $('legend').replaceChildren(
    ...classes.map((cls, i) => {
      const item = document.createElement('span');
      item.textContent = cls;
      item.style.setProperty('--c', colourOf(cls, i));
      return item;
    }),
    ...(frames.some((f) => f.label === null) ? [Object.assign(document.createElement('span'), { textContent: 'flagged by the guard', className: 'flagged-key' })] : []),
  );
}

export interface ShownResult {
  fileName: string;
  classes: readonly string[];
  inputSize: readonly [number, number];
  frames: DecisionFrame[];
  output: DecisionOutput;
  /** The result as predict --json prints it for this file. */
  json: Record<string, unknown>;
  /** Reading and classifying, without loading the video decoder. */
  seconds: number;
  /** Loading the video decoder, when this file needed it first. */
  decoderLoadSeconds: number;
}

/** Resolves in a later task of the event loop. */
const nextTask = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * Fills the card with a result (after clearResult), in three tasks rather than one: drawn in one
 * go, a 30-frame result made a main-thread task of 100 ms on a busy 2-core machine, and the page
 * must keep answering. Stops (false, the card still hidden) when `current()` turns false on the
 * way: a newer file or Cancel came in, and that one clears the card.
 */
export async function showResult(shown: ShownResult, current: () => boolean): Promise<boolean> {
  const { classes, frames, output } = shown;
  const { result } = output;
  const [height, width] = shown.inputSize;
  const video = result.kind === 'video';
  $('result-file').textContent = `${shown.fileName}${video ? ` — ${frames.length} frames` : ''}`;
  $('timing').textContent =
    `${frames.length} frame${frames.length === 1 ? '' : 's'} in ${shown.seconds.toFixed(1)} s on this device: ${((1000 * shown.seconds) / frames.length).toFixed(0)} ms per frame` +
    (shown.decoderLoadSeconds > 0 ? ` (and ${shown.decoderLoadSeconds.toFixed(1)} s to load the video decoder, once)` : '');
  $('result-json').textContent = JSON.stringify(shown.json, null, 2);
  await nextTask();
  if (!current()) return false;
  renderTimeline(classes, result);
  await nextTask();
  if (!current()) return false;
  if (result.label === null) {
    // The guard refused the input: no diagnosis, but the user sees what was refused and why.
    document.body.dataset['guard'] = 'flagged';
    $('label-prefix').textContent = 'Result:';
    $('label').textContent = 'no diagnosis';
    $('guard').textContent = `No diagnosis: ${result.guard?.reason ?? 'the input was refused'}.`;
    $('guard').hidden = false;
    const thumb = frames[result.frames?.findIndex((f) => f.label === null) ?? 0] ?? frames[0]!;
    paint($<HTMLCanvasElement>('frame-canvas'), thumb.rgb, width, height);
    $('frame-caption').textContent = video ? `Input at ${thumb.time.toFixed(1)} s (refused)` : 'Input (refused)';
    $('heatmap-figure').hidden = true;
    $('result').hidden = false;
    return true;
  }
  document.body.dataset['guard'] = result.guard ? 'passed' : 'none';
  $('label-prefix').textContent = 'Most likely:';
  const classIndex = classes.indexOf(result.label);
  $('label').textContent = result.label;
  $('label').style.color = colourOf(result.label, classIndex);
  $('confidence').textContent = `(${(100 * result.confidence!).toFixed(1)}%${result.aggregation === 'vote' ? ' of frames' : ''})`;
  const u = result.uncertainty!;
  $('uncertainty').innerHTML =
    `Uncertainty <strong>${(100 * u.entropy).toFixed(0)}%</strong>` +
    (u.ensembleStd !== null ? `<br><span class="muted">ensemble spread ${(100 * u.ensembleStd).toFixed(1)}%</span>` : '');
  $('uncertainty').dataset['entropy'] = String(u.entropy);
  if (result.predictionSet) {
    $('prediction-set').textContent = setLine(result.predictionSet);
    $('prediction-set').dataset['decided'] = String(result.predictionSet.decided);
    $('prediction-set').hidden = false;
  }
  if (result.warning) {
    $('warning').textContent = `Treat this label with caution — ${result.warning}.`;
    $('warning').hidden = false;
  }
  renderBars(classes, result.probabilities!);
  const frame = frames[output.shown ?? 0]!;
  paint($<HTMLCanvasElement>('frame-canvas'), frame.rgb, width, height);
  $('frame-caption').textContent = video ? `Frame at ${frame.time.toFixed(1)} s (most typical of the label)` : 'Input';
  if (output.heatmapRgb) paint($<HTMLCanvasElement>('heatmap-canvas'), output.heatmapRgb, width, height);
  $('result').hidden = false;
  return true;
}
