// "Adapt to my data": the panel on the page's main thread. A site drops labelled clips and images
// (or picks a folder); each is decoded here as a file to classify is (frames.ts) and handed to the
// model worker, which keeps its model inputs (adapt_worker.ts). The class comes from the path
// (src/adapt/labels.ts: a class folder, a patient folder under it, a Cov/Pne/Reg name) or is
// chosen per file. "Adapt" trains in the worker and shows the held-back accuracy, balanced
// accuracy and confusion matrix before and after; the result is also JSON in
// data-testid="adapt-result". Export, load and reset act on the adaptation kept in IndexedDB.
// No TF.js here, and nothing is sent anywhere.
import { labelOfPath } from '../../adapt/labels.js';
import { CancelledError, type ModelClient } from './model_client.js';
import { readInput } from './frames.js';
import { setProgress, setStatus } from './render.js';
import type { AdaptedSummary, AdaptReplies } from './worker_protocol.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

interface Row {
  /** The worker's key for the file's inputs (the id of its 'adapt-add' call), once read. */
  id: number;
  path: string;
  label?: string;
  group: string;
  frames?: number;
  /** Its last cell: frames read, the reason it was left out, "held back" after a run. */
  status: HTMLElement;
}

type RunReply = AdaptReplies['adapt-run'];

export interface AdaptPanel {
  /** Shows what the model in use is (shipped, or adapted here). */
  showAdapted(summary: AdaptedSummary | undefined): void;
}

const fixed = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

/** A file with its path in what the user gave (a folder pick's relative path, a dropped folder's, or its name). */
interface GivenFile {
  file: File;
  path: string;
}

const given = (file: File): GivenFile => ({ file, path: file.webkitRelativePath || file.name });

/** Minimal typing of the File and Directory Entries API (dropped folders). */
interface Entry {
  isFile: boolean;
  isDirectory: boolean;
  fullPath: string;
  file?(ok: (file: File) => void, fail: (err: unknown) => void): void;
  createReader?(): { readEntries(ok: (entries: Entry[]) => void, fail: (err: unknown) => void): void };
}

/** Every file under a dropped entry, with its path from the dropped item (folders walked). */
async function filesOf(entry: Entry): Promise<GivenFile[]> {
  if (entry.isFile) {
    const file = await new Promise<File>((ok, fail) => entry.file!(ok, fail));
    return [{ file, path: entry.fullPath.replace(/^\//, '') }];
  }
  const reader = entry.createReader!();
  const out: GivenFile[] = [];
  // readEntries answers in pages (100 at a time in Chromium) until it answers none.
  for (;;) {
    const page = await new Promise<Entry[]>((ok, fail) => reader.readEntries(ok, fail));
    if (page.length === 0) break;
    for (const child of page.sort((a, b) => a.fullPath.localeCompare(b.fullPath))) out.push(...(await filesOf(child)));
  }
  return out;
}

/** What was dropped: files and whole folders (their layout gives classes and patients). */
async function droppedFiles(transfer: DataTransfer): Promise<GivenFile[]> {
  const items = Array.from(transfer.items).filter((item) => item.kind === 'file');
  // Entries must be taken before the first await: the list empties once the drop event is over.
  const taken = items.map((item) => ({ entry: (item as unknown as { webkitGetAsEntry(): Entry | null }).webkitGetAsEntry?.() ?? null, file: item.getAsFile() }));
  const out: GivenFile[] = [];
  for (const { entry, file } of taken) {
    if (entry) out.push(...(await filesOf(entry)));
    else if (file) out.push(given(file));
  }
  return out;
}

export function startAdaptPanel(model: ModelClient, onAdapted: (summary: AdaptedSummary | undefined) => void): AdaptPanel {
  const { classes } = model.info.meta;
  const rows: Row[] = [];
  /** Files still being read: "Adapt" waits for them. */
  let reading = Promise.resolve();
  let running: number | undefined;

  const status = (text: string, error = false): void => setStatus(text, error, 'adapt-status');
  const progress = (done: number | undefined, total = 0): void => setProgress(done, total, 'adapt-progress');
  const refresh = (): void => {
    const ready = rows.filter((r) => r.frames !== undefined);
    const unlabelled = ready.filter((r) => !r.label).length;
    $<HTMLButtonElement>('adapt-run').disabled = running !== undefined || ready.length === 0 || unlabelled > 0;
    $<HTMLButtonElement>('adapt-clear').disabled = running !== undefined || rows.length === 0;
    const frames = ready.reduce((n, r) => n + r.frames!, 0);
    $('adapt-count').textContent = rows.length === 0 ? '' : `${ready.length} file(s), ${frames} frame(s)${unlabelled ? `; choose a class for ${unlabelled}` : ''}`;
  };

  function addRow(path: string): Row {
    const read = labelOfPath(path, classes);
    const tr = document.createElement('tr');
    const name = document.createElement('td');
    name.textContent = path;
    const cell = document.createElement('td');
    const select = document.createElement('select');
    select.setAttribute('aria-label', `class of ${path}`);
    for (const value of ['', ...classes]) select.append(new Option(value || 'choose…', value));
    select.value = read.label ?? '';
    cell.append(select);
    const source = document.createElement('td');
    source.className = 'muted small';
    source.textContent = read.from === 'folder' ? 'folder' : read.from === 'prefix' ? 'name' : '';
    const group = document.createElement('td');
    group.className = 'muted small';
    group.textContent = read.group.startsWith('patient:') ? `patient ${read.group.slice(8)}` : 'file';
    const state = document.createElement('td');
    state.className = 'small';
    state.textContent = 'reading…';
    tr.append(name, cell, source, group, state);
    $('adapt-rows').append(tr);
    const row: Row = { id: 0, path, group: read.group, status: state, ...(read.label ? { label: read.label } : {}) };
    select.addEventListener('change', () => {
      if (select.value) {
        row.label = select.value;
        source.textContent = 'chosen';
      } else delete row.label;
      refresh();
    });
    rows.push(row);
    return row;
  }

  /** Decodes each file and hands its frames to the worker; a bad file is marked and the rest go on. */
  function addFiles(files: GivenFile[]): void {
    if (files.length === 0) return;
    $('adapt-table').hidden = false;
    const added = files.map(({ file, path }) => ({ file, row: addRow(path) }));
    refresh();
    reading = reading.then(async () => {
      for (const { file, row } of added) {
        try {
          const input = await readInput(file, () => {});
          const job = model.call({ type: 'adapt-add', name: row.path, kind: input.kind, source: input.source });
          const reply = await job.done;
          // The worker keeps the file's inputs under the call's id.
          row.id = job.id;
          row.frames = reply.frames;
          row.status.textContent = `${reply.frames} frame(s)${reply.flagged ? `, ${reply.flagged} left out by the guard` : ''}`;
        } catch (err) {
          const message = (err as Error).message;
          row.status.textContent = message.startsWith(`${row.path}:`) || message.startsWith(`${file.name}:`) ? message : `${row.path}: ${message}`;
          row.status.classList.add('error');
        }
        refresh();
      }
    });
  }

  async function run(): Promise<void> {
    await reading;
    const ready = rows.filter((r) => r.frames !== undefined && r.label);
    const settings = {
      mode: $<HTMLSelectElement>('adapt-mode').value as 'head' | 'new-layer',
      epochs: Number($<HTMLInputElement>('adapt-epochs').value),
      lr: Number($<HTMLInputElement>('adapt-lr').value),
      heldOutFraction: Number($<HTMLInputElement>('adapt-held-out').value) / 100,
    };
    const job = model.call({ type: 'adapt-run', files: ready.map((r) => ({ id: r.id, label: r.label!, group: r.group })), settings }, (done, total, stage) => {
      progress(done, total);
      status(stage === 'features' ? `Computing features: ${done} of ${total}…` : `Training: epoch ${done} of ${total}…`);
    });
    running = job.id;
    $('adapt-cancel').hidden = false;
    refresh();
    document.body.dataset['adapt'] = 'working';
    try {
      const reply = await job.done;
      showResult(reply);
      onAdapted(reply.adapted);
      document.body.dataset['adapt'] = 'done';
      status(reply.kept ? 'Adapted. The adapted model is used for every file from now on, and kept in this browser. Nothing was uploaded.' : `Adapted, but it could not be kept in this browser (${reply.keepProblem}): it is gone when the page is reloaded.`);
    } catch (err) {
      document.body.dataset['adapt'] = err instanceof CancelledError ? 'cancelled' : 'error';
      status(err instanceof CancelledError ? 'Adapting cancelled: the model in use is unchanged.' : (err as Error).message, !(err instanceof CancelledError));
    } finally {
      running = undefined;
      $('adapt-cancel').hidden = true;
      progress(undefined);
      refresh();
    }
  }

  function matrix(confusion: number[][], caption: string): HTMLTableElement {
    const table = document.createElement('table');
    table.className = 'confusion';
    table.createCaption().textContent = caption;
    const head = table.createTHead().insertRow();
    head.append(Object.assign(document.createElement('th'), { textContent: 'true ↓ / predicted →' }));
    for (const c of classes) head.append(Object.assign(document.createElement('th'), { textContent: c }));
    const body = table.createTBody();
    confusion.forEach((row, i) => {
      const tr = body.insertRow();
      tr.append(Object.assign(document.createElement('th'), { textContent: classes[i]! }));
      row.forEach((n, j) => {
        const td = tr.insertCell();
        td.textContent = String(n);
        if (i === j) td.className = 'diagonal';
      });
    });
    return table;
  }

  function showResult(reply: RunReply): void {
    const { result } = reply;
    const held = new Set(result.heldOutFiles);
    for (const row of rows) row.status.dataset['heldOut'] = String(held.has(row.path));
    const lines: [string, number, number][] = [
      ['Frame accuracy', result.before.accuracy, result.after.accuracy],
      ['Frame balanced accuracy', result.before.balancedAccuracy, result.after.balancedAccuracy],
      ['File accuracy', result.filesBefore.accuracy, result.filesAfter.accuracy],
      ['File balanced accuracy', result.filesBefore.balancedAccuracy, result.filesAfter.balancedAccuracy],
    ];
    const table = document.createElement('table');
    table.className = 'adapt-scores';
    const head = table.createTHead().insertRow();
    for (const h of [`Held back (${result.heldOutFiles.length} files, ${result.heldOutFrames} frames)`, 'Before', 'After']) head.append(Object.assign(document.createElement('th'), { textContent: h }));
    const body = table.createTBody();
    for (const [name, before, after] of lines) {
      const tr = body.insertRow();
      tr.insertCell().textContent = name;
      tr.insertCell().textContent = fixed(before);
      tr.insertCell().textContent = fixed(after);
    }
    const note = document.createElement('p');
    note.className = 'muted small';
    const { calibration: cal } = result;
    note.textContent =
      `Trained ${result.settings.mode === 'head' ? 'the head' : 'a new layer before the classifier'} on ${result.trainFiles.length} file(s), ${result.trainFrames} frame(s), ${result.settings.epochs} epochs, in ${result.seconds.toFixed(1)} s. ` +
      `Prediction sets recalibrated on the ${cal.frames} held-back frame(s)${cal.videos ? ` and ${cal.videos} video(s)` : ''}` +
      (cal.frames < cal.needed ? `: fewer than the ${cal.needed} a ${Math.round(cal.coverage * 100)}% set needs, so every set holds every class until more are held back.` : '.');
    $('adapt-report').replaceChildren(table, matrix(result.before.confusion, 'Before'), matrix(result.after.confusion, 'After'), note);
    $('adapt-report').hidden = false;
    const json = {
      before: { accuracy: result.before.accuracy, balancedAccuracy: result.before.balancedAccuracy, confusion: result.before.confusion },
      after: { accuracy: result.after.accuracy, balancedAccuracy: result.after.balancedAccuracy, confusion: result.after.confusion },
      files: { before: result.filesBefore, after: result.filesAfter },
      trainFrames: result.trainFrames,
      heldOutFrames: result.heldOutFrames,
      trainFiles: result.trainFiles,
      heldOutFiles: result.heldOutFiles,
      settings: result.settings,
      calibration: result.calibration,
      seconds: result.seconds,
    };
    $('adapt-result').textContent = JSON.stringify(json, null, 2);
  }

  async function act(what: string, f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } catch (err) {
      status(`${what}: ${(err as Error).message}`, true);
    }
  }

  const filesInput = $<HTMLInputElement>('adapt-files');
  const folderInput = $<HTMLInputElement>('adapt-folder');
  for (const input of [filesInput, folderInput]) {
    input.addEventListener('change', () => {
      addFiles(Array.from(input.files ?? [], given));
      input.value = '';
    });
  }
  const panel$ = $('adapt');
  panel$.addEventListener('dragover', (e) => {
    e.preventDefault();
    panel$.classList.add('over');
  });
  panel$.addEventListener('dragleave', () => panel$.classList.remove('over'));
  panel$.addEventListener('drop', (e) => {
    e.preventDefault();
    panel$.classList.remove('over');
    if (!e.dataTransfer || running !== undefined) return;
    droppedFiles(e.dataTransfer).then(addFiles, (err: unknown) => status(`Drop: ${(err as Error).message}`, true));
  });
  $('adapt-run').addEventListener('click', () => void run());
  $('adapt-cancel').addEventListener('click', () => {
    if (running !== undefined) model.cancel(running);
  });
  $('adapt-clear').addEventListener('click', () =>
    void act('Clear', async () => {
      await model.call({ type: 'adapt-remove' }).done;
      rows.length = 0;
      $('adapt-rows').replaceChildren();
      $('adapt-table').hidden = true;
      refresh();
    }),
  );
  $('adapt-export').addEventListener('click', () =>
    void act('Export', async () => {
      const { json, fileName } = await model.call({ type: 'adapt-export' }).done;
      const url = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
      const link = Object.assign(document.createElement('a'), { href: url, download: fileName });
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      status(`Saved as ${fileName}: the adapted weights and figures, no image.`);
    }),
  );
  const importInput = $<HTMLInputElement>('adapt-import');
  importInput.addEventListener('change', () => {
    const file = importInput.files?.[0];
    importInput.value = '';
    if (!file) return;
    void act('Load', async () => {
      const { adapted } = await model.call({ type: 'adapt-import', text: await file.text(), source: file.name }).done;
      onAdapted(adapted);
      status(`Loaded ${file.name}: the adapted model is in use and kept in this browser.`);
    });
  });
  $('adapt-reset').addEventListener('click', () =>
    void act('Reset', async () => {
      const { adapted } = await model.call({ type: 'adapt-reset' }).done;
      onAdapted(adapted);
      status('Reset: the shipped model is in use, and the adaptation kept in this browser is forgotten.');
    }),
  );
  // Each mode has its own learning rate and epochs; choosing a mode fills them in.
  const { adaptDefaults } = model.info;
  const modeSelect = $<HTMLSelectElement>('adapt-mode');
  const fillDefaults = (): void => {
    const defaults = adaptDefaults.settings[modeSelect.value as 'head' | 'new-layer'];
    $<HTMLInputElement>('adapt-epochs').value = String(defaults.epochs);
    $<HTMLInputElement>('adapt-lr').value = String(defaults.lr);
    $<HTMLInputElement>('adapt-held-out').value = String(Math.round(defaults.heldOutFraction * 100));
  };
  modeSelect.value = adaptDefaults.mode;
  modeSelect.addEventListener('change', fillDefaults);
  fillDefaults();
  refresh();

  const panel: AdaptPanel = {
    showAdapted(summary) {
      $<HTMLButtonElement>('adapt-export').disabled = !summary;
      $<HTMLButtonElement>('adapt-reset').disabled = !summary;
    },
  };
  panel.showAdapted(model.info.adapted);
  return panel;
}
