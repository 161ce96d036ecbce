// `pocovid update`: continue a run's models on new data (head or a new layer) and report the gain
// on the new data and the forgetting on the run's own test folds.
import { Option, type Command } from 'commander';
import { evaluateRun } from '../eval/report.js';
import { trainConfigSchema } from '../train/config.js';
import { UPDATE_MODES, updateRun, type UpdateMode } from '../train/update.js';
import { integer, listOf, onOff, schemaNumber } from './options.js';

// The training options update may override take their rule from the training schema, as train's do.
const trainRule = (field: 'epochs' | 'lr' | 'batchSize' | 'seed' | 'views' | 'validationFraction' | 'earlyStoppingPatience'): ((value: string) => number) =>
  schemaNumber(trainConfigSchema.shape[field]);

interface UpdateCliOptions {
  run: string;
  data: string;
  out: string;
  mode: UpdateMode;
  fold?: number[];
  newFold: number;
  epochs: number;
  lr?: number;
  batchSize?: number;
  seed?: number;
  views?: number;
  augment?: boolean;
  validationFraction?: number;
  patience?: number;
  runtime: 'auto' | 'ort' | 'tfjs';
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('update')
    .description("continue a run's models on new data: fine-tune what the run trained (head) or train only a new layer before the classifier (new-layer); reports the gain on the new data and the forgetting on the run's test folds")
    .requiredOption('--run <dir>', 'training run (train or cv) whose fold models to continue')
    .requiredOption('--data <dataset>', 'the new dataset (pocovid data build)')
    .requiredOption('--out <dir>', 'output folder: fold-<k>/ (a run each), update.json, update.md')
    .addOption(new Option('--mode <mode>', 'head: fine-tune the trainable part; new-layer: add a layer before the classifier and train only it').choices([...UPDATE_MODES]).default('head'))
    .option('--fold <list>', "the run's folds to update, comma-separated (default: all)", listOf(integer(0), 'a comma-separated list of fold numbers'))
    .option('--new-fold <k>', "the new dataset's test fold; its other folds train", integer(0), 0)
    .option('--epochs <n>', 'epochs on the new data', trainRule('epochs'), 10)
    .option('--lr <rate>', "learning rate (default: the run's)", trainRule('lr'))
    .option('--batch-size <n>', "batch size (default: the run's)", trainRule('batchSize'))
    .option('--seed <n>', "seed (default: the run's)", trainRule('seed'))
    .option('--views <n>', "augmented views per image (default: the run's)", trainRule('views'))
    .option('--augment <on|off>', "augmentation (default: the run's)", onOff)
    .option('--validation-fraction <f>', "share of the new training patients held out to choose the checkpoint (default: the run's)", trainRule('validationFraction'))
    .option('--patience <n>', "early-stopping patience (default: the run's)", trainRule('earlyStoppingPatience'))
    .addOption(new Option('--runtime <engine>', 'forward passes on ONNX Runtime (ort), TF.js (tfjs), or ort where it loads (auto)').choices(['auto', 'ort', 'tfjs']).default('auto'))
    .option('--quiet', 'no progress output')
    .action(async (o: UpdateCliOptions) => {
      const result = await updateRun({
        run: o.run,
        data: o.data,
        out: o.out,
        mode: o.mode,
        folds: o.fold,
        newTestFold: o.newFold,
        epochs: o.epochs,
        lr: o.lr,
        batchSize: o.batchSize,
        seed: o.seed,
        views: o.views,
        augment: o.augment,
        validationFraction: o.validationFraction,
        patience: o.patience,
        runtime: o.runtime,
        quiet: o.quiet,
      });
      for (const f of result.folds) await evaluateRun(f.out);
      for (const f of result.folds) {
        const fmt = (a: number, b: number): string => `${a.toFixed(3)} → ${b.toFixed(3)}`;
        console.log(`fold ${f.fold}: new data frame accuracy ${fmt(f.newData.before.frameAccuracy, f.newData.after.frameAccuracy)}, video ${fmt(f.newData.before.videoAccuracy, f.newData.after.videoAccuracy)}`);
        console.log(`fold ${f.fold}: run's test fold frame accuracy ${fmt(f.oldData.before.frameAccuracy, f.oldData.after.frameAccuracy)}, video ${fmt(f.oldData.before.videoAccuracy, f.oldData.after.videoAccuracy)}`);
      }
      console.log(`update: ${result.out}/update.md`);
    });
}
