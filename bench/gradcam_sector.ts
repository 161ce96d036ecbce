// Where the explanations look: the share of each test frame's Grad-CAM mass that falls OUTSIDE
// the imaging sector (fitted on the frame's clip, src/data/sector.ts), for the folds of a cv run.
// Mass on the black corners, the screen and burned-in text explains the scanner, not the lung.
//   npx tsx bench/gradcam_sector.ts --run runs/<cv run> [--folds 0,1,2,3,4] [--sources 12] [--frames 4] [--json out.json]
// Each fold's own model explains its own test frames (predicted class), the first --sources
// sources of the fold and --frames frames of each, spread over the clip.
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/engine/index.js';
import { gradCam } from '../src/explain/gradcam.js';
import { loadRunModel, runDataset, testItems } from '../src/explain/run_data.js';
import { fitSector, sectorMask } from '../src/data/sector.js';
import { clipInputs } from '../src/models/preprocess.js';
import { runFoldDirs } from '../src/infer/model_dir.js';
import { writeJsonAtomicSync } from '../src/util/atomic.js';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    folds: { type: 'string' },
    sources: { type: 'string', default: '12' },
    frames: { type: 'string', default: '4' },
    json: { type: 'string' },
  },
});
if (!values.run) throw new Error('--run <cv run> is required');
await initEngine();
const run = values.run;
const folds = values.folds ? values.folds.split(',').map(Number) : runFoldDirs(run).map((f) => f.fold);
const perFrame: { fold: number; source: string; outside: number }[] = [];
for (const fold of folds) {
  const { model, cfg } = await loadRunModel(run, fold);
  const items = await testItems(runDataset(run, fold), fold, cfg, Number(values.sources));
  for (const item of items) {
    const frames = item.frames.map((f) => ({ width: f.width, height: f.height, rgb: f.rgb }));
    // The sector of the clip as it is (the same fit a sector-trained model applies).
    const mask = sectorMask(fitSector(frames), cfg.inputSize[1], cfg.inputSize[0]);
    const inputs = clipInputs(frames, cfg);
    const step = Math.max(1, Math.floor(inputs.length / Number(values.frames)));
    for (let i = 0; i < inputs.length && i / step < Number(values.frames); i += step) {
      const input = tf.tensor4d(inputs[i]!, [1, cfg.inputSize[0], cfg.inputSize[1], cfg.channels]);
      const cam = gradCam(model, input, cfg.camLayer);
      input.dispose();
      let total = 0;
      let outside = 0;
      cam.map.forEach((v, p) => {
        total += v;
        if (!mask[p]) outside += v;
      });
      if (total > 0) perFrame.push({ fold, source: item.name, outside: outside / total });
    }
  }
  model.dispose();
}
const mean = perFrame.reduce((a, f) => a + f.outside, 0) / perFrame.length;
const sorted = perFrame.map((f) => f.outside).sort((a, b) => a - b);
const summary = {
  run,
  frames: perFrame.length,
  meanOutside: mean,
  medianOutside: sorted[Math.floor(sorted.length / 2)],
  framesOverHalfOutside: perFrame.filter((f) => f.outside > 0.5).length / perFrame.length,
};
console.log(JSON.stringify(summary));
if (values.json) writeJsonAtomicSync(values.json, { ...summary, perFrame });
