// Options shared by `pocovid train` and `pocovid cv`, parsed into the trainer's config input.
import { Command, Option, InvalidArgumentError } from 'commander';
import type { TrainConfigInput } from '../train/config.js';
import { CONFORMAL_METHODS, DEFAULT_COVERAGE, type ConformalMethod } from '../eval/conformal.js';

function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`"${value}" is not an integer`);
  return n;
}

function float(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`"${value}" is not a number`);
  return n;
}

function floats(value: string): number[] {
  const list = value.split(',').map((v) => Number(v.trim()));
  if (!list.length || list.some((v) => !Number.isFinite(v) || v <= 0)) throw new InvalidArgumentError(`"${value}": use positive numbers separated by commas`);
  return list;
}

function coverage(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`"${value}": a coverage is a number between 0 and 1, e.g. 0.9`);
  return n;
}

function onOff(value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new InvalidArgumentError(`"${value}": use on or off`);
}

function size(value: string): [number, number] {
  const parts = value.split(/[x,]/).map(Number);
  const [h, w] = parts.length === 1 ? [parts[0], parts[0]] : parts;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h! <= 0 || w! <= 0) throw new InvalidArgumentError(`"${value}": use N or HxW`);
  return [h!, w!];
}

export function addTrainOptions(command: Command): Command {
  return command
    .requiredOption('--data <dataset>', 'dataset folder written by `pocovid data build`')
    .requiredOption('--model <name>', 'model name (see `pocovid models`)')
    .requiredOption('--out <run>', 'run folder to write (re-running resumes)')
    .option('--epochs <n>', 'epochs', int, 40)
    .option('--batch-size <n>', 'batch size', int, 16)
    .option('--lr <rate>', 'Adam learning rate', float, 1e-4)
    .addOption(new Option('--lr-decay <kind>', "'original' = Keras decay lr/epochs as POCOVID-Net").choices(['original', 'none']).default('original'))
    .option('--weights <file>', 'pretrained weights (Keras .h5, safetensors) or a model saved by pocovid')
    .option('--trainable-layers <n>', 'trainable conv layers from the end of the backbone', int)
    .option('--augment <on|off>', 'augmentation (rotation ±10°, shifts ±10%, flips)', onOff, true)
    .option('--views <n>', 'augmented views per image in the frozen-feature cache', int, 4)
    .addOption(new Option('--feature-cache <mode>', 'auto: run the frozen backbone once per view; off: every step').choices(['auto', 'off']).default('auto'))
    .option('--seed <n>', 'random seed (split, shuffling, augmentation, init)', int, 0)
    .option('--init <run>', 'start from the model of an earlier run (fine-tuning on new data)')
    .addOption(new Option('--augmentation <kind>', "original: POCOVID-Net's (rotation, shifts, both flips); ultrasound: no vertical flip, depth zoom, gain, contrast, speckle, ±2 grey levels").choices(['original', 'ultrasound']).default('original'))
    .addOption(new Option('--head <kind>', "pocovid: the model's own head; linear: global pooling → softmax, trained by epochs; logistic: the linear head fitted as an L2 logistic regression on the frozen features (needs --trainable-layers 0)").choices(['pocovid', 'linear', 'logistic']))
    .addOption(new Option('--class-bias <kind>', "logistic head: per-class logit offsets fitted on the training folds' out-of-fold predictions (patients not seen), or none").choices(['fitted', 'none']).default('none'))
    .option('--penalties <list>', 'L2 penalties a logistic head tries, the best on the validation split kept (comma-separated)', floats)
    .addOption(new Option('--sector <mode>', 'the imaging sector, fitted per source: mask the screen around it, crop to it, or warp a fan into depth × angle').choices(['off', 'mask', 'crop', 'warp']).default('off'))
    .addOption(new Option('--colour <kind>', 'grey: feed the luma to all channels of an RGB network').choices(['rgb', 'grey']).default('rgb'))
    .option('--weight-decay <w>', 'decoupled weight decay on the trainable kernels (AdamW)', float, 0)
    .option('--label-smoothing <e>', 'label smoothing ε', float, 0)
    .option('--mixup <alpha>', 'mixup of the trainable part\'s inputs, λ ~ Beta(α, α); 0 = off', float, 0)
    .addOption(new Option('--class-weights <kind>', 'loss weights: balanced by class frame counts, or every source / patient weighing the same within its class').choices(['none', 'balanced', 'source', 'patient']).default('none'))
    .option('--validation-fraction <f>', 'share of training patients held out for model selection', float, 0.2)
    .option('--patience <n>', 'early-stopping patience (epochs)', int, 20)
    .option('--classes <list>', 'classes to train on, comma-separated (default: the dataset classes without viral)')
    .option('--input-size <N|HxW>', 'override the model input size', size)
    .option('--dropout <rate>', 'dropout rate of the head', float)
    .addOption(new Option('--conformal <score>', 'prediction-set score calibrated on the validation split: adaptive prediction sets (aps) or regularised (raps)').choices([...CONFORMAL_METHODS]).default('aps'))
    .option('--coverage <p>', 'target coverage of the prediction sets (the true class in the set at least this often)', coverage, DEFAULT_COVERAGE)
    .addOption(new Option('--runtime <engine>', 'frozen-backbone forward passes (feature cache) on ONNX Runtime (ort), TF.js (tfjs), or ort where it loads (auto)').choices(['auto', 'ort', 'tfjs']).default('auto'))
    .option('--quiet', 'no progress output');
}

export interface ParsedTrainOptions {
  data: string;
  model: string;
  out: string;
  epochs: number;
  batchSize: number;
  lr: number;
  lrDecay: 'original' | 'none';
  weights?: string;
  trainableLayers?: number;
  augment: boolean;
  views: number;
  featureCache: 'auto' | 'off';
  seed: number;
  init?: string;
  classWeights: 'none' | 'balanced' | 'source' | 'patient';
  augmentation: 'original' | 'ultrasound';
  head?: 'pocovid' | 'linear' | 'logistic';
  penalties?: number[];
  classBias: 'fitted' | 'none';
  colour: 'rgb' | 'grey';
  sector: 'off' | 'mask' | 'crop' | 'warp';
  weightDecay: number;
  labelSmoothing: number;
  mixup: number;
  validationFraction: number;
  patience: number;
  classes?: string;
  inputSize?: [number, number];
  dropout?: number;
  runtime: 'auto' | 'ort' | 'tfjs';
  conformal: ConformalMethod;
  coverage: number;
  quiet?: boolean;
}

export function toConfigInput(o: ParsedTrainOptions): Omit<TrainConfigInput, 'fold'> {
  return {
    data: o.data,
    model: o.model,
    out: o.out,
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    lrDecay: o.lrDecay,
    weights: o.weights,
    trainableLayers: o.trainableLayers,
    augment: o.augment,
    views: o.views,
    featureCache: o.featureCache,
    seed: o.seed,
    init: o.init,
    classWeights: o.classWeights,
    augmentation: o.augmentation,
    head: o.head,
    penalties: o.penalties,
    classBias: o.classBias,
    colour: o.colour,
    sector: o.sector,
    weightDecay: o.weightDecay,
    labelSmoothing: o.labelSmoothing,
    mixup: o.mixup,
    validationFraction: o.validationFraction,
    earlyStoppingPatience: o.patience,
    classes: o.classes ? o.classes.split(',').map((c) => c.trim()).filter(Boolean) : undefined,
    inputSize: o.inputSize,
    dropout: o.dropout,
    runtime: o.runtime,
    conformal: o.conformal,
    coverage: o.coverage,
  };
}
