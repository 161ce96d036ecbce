// `pocovid explain classes`: one class-visualisation picture per class of a run's model, plus a
// panel with all of them side by side and classes.json (scores before and after).
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { createRng } from '../util/rng.js';
import { visualiseClass, type ClassVisOptions } from './class_vis.js';
import { dataUrl, escapeXml, pngOf } from './figure.js';
import { svgToPng } from '../plots/render.js';
import { loadRunModel, type RunModel } from './run_data.js';

export interface ClassPicturesOptions extends Omit<ClassVisOptions, 'rng' | 'onStep'> {
  run: string;
  fold?: number;
  out: string;
  seed?: number;
  log?: (line: string) => void;
}

export interface ClassPicture {
  className: string;
  file: string;
  startScore: number;
  endScore: number;
}

export async function renderClassPictures(options: ClassPicturesOptions): Promise<{ pictures: ClassPicture[]; panel: string }> {
  const loaded = await loadRunModel(options.run, options.fold);
  // Loaded for this call only: its weights are released however it ends.
  try {
    return await classPictures(options, loaded);
  } finally {
    loaded.model.dispose();
  }
}

async function classPictures(options: ClassPicturesOptions, { model, cfg, classes, fold }: RunModel): Promise<{ pictures: ClassPicture[]; panel: string }> {
  const [h, w] = cfg.inputSize;
  const display = Math.max(224, w);
  const rng = createRng(options.seed ?? 0);
  const suffix = options.color ? 'color' : 'grey';
  const pictures: ClassPicture[] = [];
  const pngs: Buffer[] = [];
  for (const [k, className] of classes.entries()) {
    const started = Date.now();
    const result = visualiseClass(model, cfg, k, { ...options, rng: rng.fork() });
    const png = await pngOf(result.rgb, w, h, display);
    const file = `class-${className}-${suffix}.png`;
    await writeFileAtomic(join(options.out, file), png);
    pngs.push(png);
    pictures.push({ className, file, startScore: result.scores[0]!, endScore: result.scores.at(-1)! });
    options.log?.(`${className}: score ${result.scores[0]!.toFixed(3)} → ${result.scores.at(-1)!.toFixed(3)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const gap = 12;
  const width = classes.length * (display + gap);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${display + 56}"><rect width="100%" height="100%" fill="white"/>
<text x="4" y="18" font-size="14" font-family="DejaVu Sans">Class visualisation (${options.color ? 'colour' : 'grey'} updates, ${options.steps ?? 100} steps, seed ${options.seed ?? 0}) · ${escapeXml(model.name)}${fold === undefined ? '' : ` · fold ${fold}`}</text>
${pngs.map((png, k) => `<image x="${k * (display + gap)}" y="28" width="${display}" height="${display}" href="${dataUrl(png)}"/><text x="${k * (display + gap) + 4}" y="${display + 48}" font-size="13" font-family="DejaVu Sans">${escapeXml(classes[k]!)}</text>`).join('\n')}
</svg>`;
  const panel = join(options.out, `classes-${suffix}.png`);
  await writeFileAtomic(panel, svgToPng(svg, 1));
  await writeFileAtomic(
    join(options.out, `classes-${suffix}.json`),
    JSON.stringify({ run: options.run, fold: fold ?? null, seed: options.seed ?? 0, steps: options.steps ?? 100, color: options.color ?? false, pictures }, null, 2) + '\n',
  );
  return { pictures, panel };
}
