import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { computeCurves } from '../../src/eval/curves.js';
import {
  PNG_SCALE,
  chartToSvg,
  confusionMatrixSpec,
  readHistoryJsonl,
  renderConfusionMatrix,
  renderFoldBars,
  renderHistory,
  renderPr,
  renderRoc,
} from '../../src/plots/index.js';
import { rocSpec, thinIndices } from '../../src/plots/charts.js';

const dir = mkdtempSync(join(tmpdir(), 'pocovid-plots-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Size from the SVG's own width/height attributes (vega writes them). */
function svgSize(svg: string): { width: number; height: number } {
  const m = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  if (!m) throw new Error('svg without width/height');
  return { width: Number(m[1]), height: Number(m[2]) };
}

/** Checks the PNG matches the SVG size × scale and has real drawing on it (not one flat colour). */
async function expectDrawnPng(pngPath: string, svgPath: string): Promise<void> {
  const svg = readFileSync(svgPath, 'utf8');
  const { width, height } = svgSize(svg);
  const meta = await sharp(pngPath).metadata();
  expect(meta.width).toBe(Math.round(width * PNG_SCALE));
  expect(meta.height).toBe(Math.round(height * PNG_SCALE));
  const { data, info } = await sharp(pngPath).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let dark = 0;
  let coloured = 0;
  for (let i = 0; i < data.length; i += info.channels) {
    const [r, g, b] = [data[i]!, data[i + 1]!, data[i + 2]!];
    if (r < 100 && g < 100 && b < 100) dark++;
    if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
  }
  const pixels = info.width * info.height;
  expect(dark / pixels).toBeGreaterThan(0.002); // text and axes
  expect(coloured / pixels).toBeGreaterThan(0.002); // marks
  expect(dark / pixels).toBeLessThan(0.5);
}

const classes = ['covid', 'pneumonia', 'regular'];
const probs = [
  [0.7, 0.2, 0.1],
  [0.4, 0.5, 0.1],
  [0.2, 0.6, 0.2],
  [0.1, 0.3, 0.6],
  [0.5, 0.1, 0.4],
  [0.3, 0.3, 0.4],
];
const trueIdx = [0, 0, 1, 2, 2, 1];
const curves = computeCurves(probs, trueIdx, classes);

describe('charts', () => {
  it('renders a confusion matrix to SVG with axis titles and a PNG of the right size', async () => {
    const out = await renderConfusionMatrix([[5, 1, 0], [2, 3, 1], [1, 0, 3]], classes, join(dir, 'cm'));
    const svg = readFileSync(out.svgPath, 'utf8');
    expect(svg).toContain('Predicted class');
    expect(svg).toContain('True class');
    expect(svg).toContain('pneumonia');
    await expectDrawnPng(out.pngPath, out.svgPath);
  });

  it('row-normalises the confusion matrix on request', () => {
    const spec = confusionMatrixSpec([[3, 1], [0, 0]], ['a', 'b'], { normalize: true }) as { data: { values: { text: string }[] } };
    expect(spec.data.values.map((v) => v.text)).toEqual(['0.75', '0.25', '0.00', '0.00']);
  });

  it('renders ROC curves with AUCs in the legend and the rate axes', async () => {
    const out = await renderRoc(curves.roc, classes, join(dir, 'roc'));
    const svg = readFileSync(out.svgPath, 'utf8');
    expect(svg).toContain('False positive rate');
    expect(svg).toContain('True positive rate');
    expect(svg).toMatch(/macro average \(AUC \d\.\d{3}\)/);
    await expectDrawnPng(out.pngPath, out.svgPath);
  });

  it('renders precision-recall curves', async () => {
    const out = await renderPr(curves.pr, classes, join(dir, 'pr'));
    const svg = readFileSync(out.svgPath, 'utf8');
    expect(svg).toContain('Recall (sensitivity)');
    expect(svg).toContain('Precision');
    expect(svg).toMatch(/micro average \(AP \d\.\d{3}\)/);
    await expectDrawnPng(out.pngPath, out.svgPath);
  });

  it('renders per-fold bars for frame and video levels', async () => {
    const out = await renderFoldBars(
      [0, 1, 2].flatMap((fold) => [{ fold, level: 'frame', value: 0.6 + fold * 0.1 }, { fold, level: 'video', value: 0.7 }]),
      join(dir, 'folds'),
    );
    const svg = readFileSync(out.svgPath, 'utf8');
    expect(svg).toContain('Balanced accuracy');
    expect(svg).toContain('fold 2');
    await expectDrawnPng(out.pngPath, out.svgPath);
  });

  it('reads history.jsonl (tolerating a cut-off last line) and renders the training history', async () => {
    const lines = Array.from({ length: 5 }, (_, e) => JSON.stringify({ epoch: e + 1, loss: 1 / (e + 1), accuracy: 0.5 + e / 10, valLoss: 1.1 / (e + 1), valAccuracy: 0.45 + e / 10, valBalancedAccuracy: 0.4 + e / 10, lr: 1e-4 }));
    const file = join(dir, 'history.jsonl');
    writeFileSync(file, lines.join('\n') + '\n{"epoch": 6, "lo');
    const entries = readHistoryJsonl(file);
    expect(entries.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5]);
    writeFileSync(join(dir, 'bad.jsonl'), 'nope\n' + lines[0]);
    expect(() => readHistoryJsonl(join(dir, 'bad.jsonl'))).toThrow(/bad\.jsonl: line 1: not valid JSON/);
    const out = await renderHistory(entries, join(dir, 'history'));
    const svg = readFileSync(out.svgPath, 'utf8');
    for (const title of ['Epoch', 'Loss', 'Accuracy', 'Learning rate', 'validation balanced accuracy']) expect(svg).toContain(title);
    await expectDrawnPng(out.pngPath, out.svgPath);
  });

  it('keeps curve plots small by thinning long curves, ends included', async () => {
    const idx = thinIndices(10_000, 400);
    expect(idx.length).toBeLessThanOrEqual(400);
    expect(idx[0]).toBe(0);
    expect(idx[idx.length - 1]).toBe(9_999);
    const n = 5_000;
    const big = computeCurves(Array.from({ length: n }, (_, i) => [((i * 7919) % n) / n, 1 - ((i * 7919) % n) / n]), Array.from({ length: n }, (_, i) => i % 2), ['a', 'b']);
    const svg = await chartToSvg(rocSpec(big.roc, ['a', 'b']));
    expect(svg.length).toBeLessThan(200_000);
  });
});
