// `pocovid export`: gather a run's fold models into one model folder, with the in-browser page.
import { Command, Option } from 'commander';
import { PocovidError } from '../errors.js';
import { exportRun } from '../infer/export.js';
import { CALIBRATION_METHODS, type CalibrationMethod } from '../onnx/calibrate.js';
import { MAX_OPSET, MIN_OPSET } from '../onnx/export.js';
import { listFrameFiles } from '../onnx/calibration_frames.js';
import { exportModelDirInt8, INT8_AGREEMENT_WARNING, INT8_REPORT_FILE } from '../onnx/int8_model_dir.js';
import { exportModelDirOnnx } from '../onnx/model_dir.js';
import { WEIGHT_DTYPES, type WeightDtype } from '../model_dir/weight_dtype.js';
import { integer, names, seed } from './options.js';

interface ExportOptions {
  run: string;
  out: string;
  fold?: number;
  page: boolean;
  foldBatchnorm: boolean;
  format: 'tfjs' | 'onnx';
  weightsDtype: WeightDtype;
  opset: number;
  int8?: boolean;
  calibration?: string;
  calibrationFrames: number;
  checkFrames: number;
  calibrationMethod: CalibrationMethod;
  seed: number;
  floatLayers?: string[];
}

const fold = integer(0);
const count = integer(0);

export function register(program: Command): void {
  program
    .command('export')
    .description('write a run\'s model (all folds as an ensemble, or one fold) as a TF.js layers model folder with its preprocessing config, class names and the in-browser page')
    .requiredOption('--run <dir>', 'training run folder (holds fold-<k>/model/)')
    .requiredOption('--out <dir>', 'model folder to write')
    .option('--fold <k>', 'export this fold only', fold)
    .option('--no-page', 'do not copy the web page next to the model')
    .option('--no-fold-batchnorm', 'keep frozen BatchNorm layers as layers (by default each is folded into the convolution before it: the same model, twice as fast in TF.js)')
    .addOption(new Option('--format <format>', 'tfjs, or onnx: also write each member as <member>/model.onnx').choices(['tfjs', 'onnx']).default('tfjs'))
    .addOption(
      // float16 by default: half the page's download, and on the real data (bench/weight_dtype.ts,
      // the default recipe's 5-fold ensemble, 405 frames) every label equal to float32's,
      // probabilities within 0.034. uint8 changed 38% of those labels: never the default.
      new Option('--weights-dtype <dtype>', 'how model.json\'s weights are stored: float16 (half the download, the default), float32 (the run\'s exact weights), or uint8 (a quarter; per tensor; changes labels, check it first); dequantised to float32 when loaded, everywhere')
        .choices([...WEIGHT_DTYPES])
        .default('float16'),
    )
    .option('--opset <n>', 'ONNX opset for --format onnx (13+ with --int8)', integer(MIN_OPSET, MAX_OPSET), 13)
    .option('--int8', 'with --format onnx: also write <member>/model.int8.onnx, calibrated on --calibration, for predict/serve --precision int8')
    .option('--calibration <dir>', 'with --int8: a dataset folder (pocovid data build), or a folder of images and videos, whose frames set the int8 ranges')
    .option('--calibration-frames <n>', 'with --int8: frames that set the ranges (a video gives up to 30)', integer(1), 200)
    .option('--check-frames <n>', 'with --int8: other frames on which int8 is compared with float (0 = none)', count, 200)
    .addOption(new Option('--calibration-method <m>', 'with --int8: minmax, or mse (least squared error, clipping rare extremes)').choices([...CALIBRATION_METHODS]).default('mse'))
    .option('--seed <n>', 'with --int8: which frames are drawn', seed, 0)
    .option('--float-layers <names>', 'with --int8: comma-separated conv layers to keep in float', names)
    .action(async (o: ExportOptions) => {
      if (o.int8 && o.format !== 'onnx') throw new PocovidError('--int8 needs --format onnx');
      if (o.int8 && !o.calibration) throw new PocovidError('--int8 needs --calibration <dir>: frames of the kind the model will see set the int8 ranges');
      // Checked before anything is written, so that a bad dataset or opset does not leave a half-made folder.
      if (o.int8 && o.opset < 13) throw new PocovidError(`--int8 needs --opset 13 or newer (per-channel DequantizeLinear), got ${o.opset}`);
      if (o.int8) listFrameFiles(o.calibration!);
      const result = await exportRun(o.run, o.out, { fold: o.fold, page: o.page, weightsDtype: o.weightsDtype, foldBatchNorm: o.foldBatchnorm });
      if (o.format === 'onnx') for (const file of await exportModelDirOnnx(o.out, { opset: o.opset })) console.log(`wrote ${file}`);
      if (o.int8) {
        const report = await exportModelDirInt8(o.out, {
          frames: o.calibration!,
          calibrationFrames: o.calibrationFrames,
          checkFrames: o.checkFrames,
          method: o.calibrationMethod,
          seed: o.seed,
          floatLayers: o.floatLayers,
          opset: o.opset,
        });
        for (const m of report.members) {
          const check =
            m.labelAgreement === null
              ? 'not checked'
              : `same label as float on ${(100 * m.labelAgreement).toFixed(1)}% of ${report.checkFrameCount} check frames, largest probability change ${m.maxProbabilityChange!.toFixed(3)}, ${m.msPerFrame!.float.toFixed(1)} → ${m.msPerFrame!.int8.toFixed(1)} ms/frame`;
          console.log(`wrote ${o.out}/${m.file} (${check})`);
          if (m.labelAgreement !== null && m.labelAgreement < INT8_AGREEMENT_WARNING) {
            console.error(`warning: ${m.member}: int8 changes the label on more than ${Math.round(100 * (1 - INT8_AGREEMENT_WARNING))}% of frames; prefer fp32 for this model, or keep layers in float (--float-layers)`);
          }
        }
        console.log(`wrote ${o.out}/${INT8_REPORT_FILE} (calibration on ${report.calibrationFrameCount} frames from ${report.calibrationFiles.length} files, ${report.method})`);
      }
      const stored = o.weightsDtype === 'float32' ? '' : `, weights stored as ${o.weightsDtype}`;
      console.log(`wrote ${result.meta.members.length} member(s) of "${result.meta.name}" (${result.meta.classes.join(', ')}${stored}) to ${o.out}`);
      if (result.pageFiles.length > 0) console.log(`page: ${o.out}/index.html (serve the folder with any static server, or: pocovid serve --model ${o.out})`);
      else if (o.page) console.log('page not copied: it has not been built (npm run build:page)');
    });
}
