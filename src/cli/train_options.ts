// Options shared by `pocovid train` and `pocovid cv`, parsed into the trainer's config input.
// Every number's range, every choice and every default comes from the training schema
// (src/train/config.ts), the one source: nothing is written twice here.
import type { Command } from 'commander';
import type { ConformalMethod } from '../eval/conformal.js';
import { RECIPE_FIELDS, recipeDefaultText, trainConfigSchema, withModelRecipe, type RecipeField, type TrainConfigInput } from '../train/config.js';
import { names, optionFromSchema, pictureSize } from './options.js';

type Field = keyof typeof trainConfigSchema.shape;

/** An option whose parser, choices and default are the training schema's field (the one source). */
export const trainOption = (flags: string, description: string, field: Field) => {
  const option = optionFromSchema(flags, description, trainConfigSchema.shape[field]);
  // A recipe option left unset takes its model's recipe (train/config.ts MODEL_RECIPES), so it
  // must reach toConfigInput as undefined rather than as the schema's default.
  if (!(RECIPE_FIELDS as readonly string[]).includes(field)) return option;
  option.default(undefined);
  // commander prints no default for an undefined one: the recipe's goes into the description.
  option.description = `${description} (default: ${recipeDefaultText(field as RecipeField)})`;
  return option;
};

export function addTrainOptions(command: Command): Command {
  return command
    .requiredOption('--data <dataset>', 'dataset folder written by `pocovid data build`')
    .requiredOption('--model <name>', 'model name (see `pocovid models`)')
    .requiredOption('--out <run>', 'run folder to write (re-running resumes)')
    .addOption(trainOption('--epochs <n>', 'epochs', 'epochs'))
    .addOption(trainOption('--batch-size <n>', 'batch size', 'batchSize'))
    .addOption(trainOption('--lr <rate>', 'Adam learning rate', 'lr'))
    .addOption(trainOption('--lr-decay <kind>', "'original' = Keras decay lr/epochs as POCOVID-Net", 'lrDecay'))
    .option('--weights <file>', 'pretrained weights (Keras .h5, safetensors) or a model saved by pocovid')
    .addOption(trainOption('--trainable-layers <n>', 'trainable conv layers from the end of the backbone', 'trainableLayers'))
    .addOption(trainOption('--augment <on|off>', 'augmentation (rotation ±10°, shifts ±10%, flips)', 'augment'))
    .addOption(trainOption('--views <n>', 'augmented views per image in the frozen-feature cache', 'views'))
    .addOption(trainOption('--feature-cache <mode>', 'auto: run the frozen backbone once per view; off: every step', 'featureCache'))
    .addOption(trainOption('--seed <n>', 'random seed (split, shuffling, augmentation, init)', 'seed'))
    .option('--init <run>', 'start from the model of an earlier run (fine-tuning on new data)')
    .addOption(trainOption('--augmentation <kind>', "original: POCOVID-Net's (rotation, shifts, both flips); ultrasound: no vertical flip, depth zoom, gain, contrast, speckle, ±2 grey levels; pipeline: what another pipeline does to a frame (noise of 1–2 grey levels, JPEG 95/75, another resize kernel, a 1-pixel shift, ±5% gain)", 'augmentation'))
    .addOption(trainOption('--invariance <weight>', "logistic head: penalise the change of its logits between each training frame and its augmented views by this weight (the views enter only through it); 0 = off", 'invariance'))
    .addOption(trainOption('--head <kind>', "pocovid: the model's own head; linear: global pooling → softmax, trained by epochs; logistic: the linear head fitted as an L2 logistic regression on the frozen features (needs --trainable-layers 0)", 'head'))
    .addOption(trainOption('--class-bias <kind>', "logistic head: per-class logit offsets fitted on the training folds' out-of-fold predictions (patients not seen), or none", 'classBias'))
    .addOption(trainOption('--penalties <list>', 'L2 penalties a logistic head tries, the best on the validation split kept (comma-separated)', 'penalties'))
    .addOption(trainOption('--colour <kind>', 'grey: feed the luma to all channels of an RGB network', 'colour'))
    .addOption(trainOption('--sector <mode>', 'the imaging sector, fitted per source: mask the screen around it, crop to it, or warp a fan into depth × angle', 'sector'))
    .addOption(trainOption('--input-blur <sigma>', 'σ in pixels of a Gaussian low-pass on each frame before the network (stable decisions under codecs, resizes, noise); 0 = none', 'inputBlur'))
    .addOption(trainOption('--anti-alias <n>', "mobilenet_v1: its first n (of 5) stride-2 convolutions run at stride 1 and a fixed binomial low-pass keeps every second pixel (features that alias less, for stable decisions); 0 = none", 'antiAlias'))
    .addOption(trainOption('--pretrain <kind>', "video-contrastive: before the head, train MobileNet v1's last block on the training folds' frames without labels (two frames of a video are a positive pair)", 'pretrain'))
    .addOption(trainOption('--pretrain-steps <n>', 'steps of that pretraining (32 videos per step)', 'pretrainSteps'))
    .addOption(trainOption('--weight-decay <w>', 'decoupled weight decay on the trainable kernels (AdamW)', 'weightDecay'))
    .addOption(trainOption('--label-smoothing <e>', 'label smoothing ε', 'labelSmoothing'))
    .addOption(trainOption('--mixup <alpha>', "mixup of the trainable part's inputs, λ ~ Beta(α, α); 0 = off", 'mixup'))
    .addOption(trainOption('--class-weights <kind>', 'loss weights: balanced by class frame counts, or every source / patient weighing the same within its class', 'classWeights'))
    .addOption(trainOption('--validation-fraction <f>', 'share of training patients held out for model selection', 'validationFraction'))
    .addOption(trainOption('--patience <n>', 'early-stopping patience (epochs)', 'earlyStoppingPatience'))
    .option('--classes <list>', 'classes to train on, comma-separated (default: the dataset classes without viral)', names)
    .option('--input-size <N|HxW>', 'override the model input size', pictureSize)
    .addOption(trainOption('--dropout <rate>', 'dropout rate of the head', 'dropout'))
    .addOption(trainOption('--conformal <score>', 'prediction-set score calibrated on the validation split: adaptive prediction sets (aps) or regularised (raps)', 'conformal'))
    .addOption(trainOption('--coverage <p>', 'target coverage of the prediction sets (the true class in the set at least this often)', 'coverage'))
    .addOption(trainOption('--runtime <engine>', 'frozen-backbone forward passes (feature cache) on ONNX Runtime (ort), TF.js (tfjs), or ort where it loads (auto)', 'runtime'))
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
  augment?: boolean;
  views: number;
  featureCache: 'auto' | 'off';
  seed: number;
  init?: string;
  classWeights?: 'none' | 'balanced' | 'source' | 'patient';
  augmentation: 'original' | 'ultrasound' | 'pipeline';
  invariance: number;
  head?: 'pocovid' | 'linear' | 'logistic';
  penalties?: number[];
  classBias?: 'fitted' | 'none';
  colour?: 'rgb' | 'grey';
  inputBlur?: number;
  antiAlias?: number;
  sector?: 'off' | 'mask' | 'crop' | 'warp';
  pretrain: 'none' | 'video-contrastive';
  pretrainSteps: number;
  weightDecay: number;
  labelSmoothing: number;
  mixup: number;
  validationFraction: number;
  patience: number;
  classes?: string[];
  inputSize?: [number, number];
  dropout?: number;
  runtime: 'auto' | 'ort' | 'tfjs';
  conformal: ConformalMethod;
  coverage: number;
  quiet?: boolean;
}

/** The trainer's input from parsed options, with the model's recipe filling what was left unset. */
export function toConfigInput(o: ParsedTrainOptions): Omit<TrainConfigInput, 'fold'> {
  return withModelRecipe({
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
    invariance: o.invariance,
    head: o.head,
    penalties: o.penalties,
    classBias: o.classBias,
    colour: o.colour,
    sector: o.sector,
    inputBlur: o.inputBlur,
    antiAlias: o.antiAlias,
    pretrain: o.pretrain,
    pretrainSteps: o.pretrainSteps,
    weightDecay: o.weightDecay,
    labelSmoothing: o.labelSmoothing,
    mixup: o.mixup,
    validationFraction: o.validationFraction,
    earlyStoppingPatience: o.patience,
    classes: o.classes,
    inputSize: o.inputSize,
    dropout: o.dropout,
    runtime: o.runtime,
    conformal: o.conformal,
    coverage: o.coverage,
  });
}
