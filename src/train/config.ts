// The resolved configuration of a training run. Every run writes it to <out>/config.json,
// so a result can always be traced back to the exact options and seed that produced it.
import { z } from 'zod';
import { CONFORMAL_METHODS, DEFAULT_COVERAGE } from '../eval/conformal.js';
import { PocovidError } from '../errors.js';

/**
 * Loss weight of each training frame. 'balanced': inversely to its class's frame count (scikit-learn's
 * 'balanced'). 'source' / 'patient': every video or image (every patient) weighs the same within
 * its class, and the classes weigh the same: a patient with 150 frames no longer outweighs ten
 * patients with 15, so the model learns what the class's patients share rather than one patient.
 */
export const CLASS_WEIGHTING = ['none', 'balanced', 'source', 'patient'] as const;
export const AUGMENTATIONS = ['original', 'ultrasound', 'pipeline'] as const;
/** Self-supervised pretraining before the head (src/train/pretrain_video.ts). */
export const PRETRAIN_KINDS = ['none', 'video-contrastive'] as const;

export const trainConfigSchema = z.object({
  data: z.string().min(1),
  model: z.string().min(1),
  fold: z.number().int().min(0),
  out: z.string().min(1),
  epochs: z.number().int().positive().default(40),
  batchSize: z.number().int().positive().default(16),
  lr: z.number().positive().default(1e-4),
  /** Keras' Adam `decay` as in POCOVID-Net (lr / epochs): lr_t = lr / (1 + decay * step). */
  lrDecay: z.enum(['original', 'none']).default('original'),
  weights: z.string().optional(),
  trainableLayers: z.number().int().min(0).optional(),
  augment: z.boolean().default(true),
  /**
   * Which augmentation when augment is on. 'original': POCOVID-Net's rotation ±10°, shifts ±10%,
   * horizontal and vertical flips. 'ultrasound': what a scan can really look like (no vertical
   * flip: the pleura is always at the top): horizontal flip, rotation ±5°, shifts ±5%, depth
   * zoom, gain, contrast, speckle and a few grey levels of noise. 'pipeline': what another
   * pipeline does to the same frame (a grey level or two of noise, JPEG 95 or 75, another resize
   * kernel, a 1-pixel shift, ±5% gain: src/data/pipeline_augment.ts), one per view.
   */
  augmentation: z.enum(AUGMENTATIONS).default('original'),
  /**
   * A logistic head's invariance penalty: (weight/2)·E‖Wᵀ(f(view) − f(frame))‖², the mean squared
   * change of the head's logits between each training frame and its augmented views (standardised
   * features, frames weighted as in the loss). The views then enter through this penalty only, not
   * as extra rows of the fit. 0 = off (views, if any, are rows). Needs --augment on and --views ≥ 2.
   */
  invariance: z.number().min(0).default(0),
  /**
   * The head on the backbone (see HeadKind); default: the model's own. 'logistic' is the linear
   * head fitted as an L2-penalised logistic regression on the standardised frozen features
   * (L-BFGS; the backbone must be fully frozen, --trainable-layers 0), the penalty chosen on the
   * validation split from `penalties`; no epochs.
   */
  head: z.enum(['pocovid', 'linear', 'logistic']).optional(),
  /**
   * Train on every frame of the dataset (no test fold, no validation split): the model a user
   * gets once cross-validation has chosen the recipe. Epoch-based heads run exactly `epochs`
   * epochs (taken from the folds' best epochs) and keep the last; a logistic head takes the one
   * penalty given. `fold` is then ignored.
   */
  refit: z.boolean().default(false),
  /**
   * A logistic head's per-class logit offsets: 'fitted' on the out-of-fold predictions of the
   * training folds (patients the model did not see), so that new patients are decided as evenly
   * per class as the validation of the penalty saw; 'none' keeps the fit's own.
   */
  classBias: z.enum(['fitted', 'none']).default('none'),
  /** The L2 penalties (on the mean loss) a logistic head tries, the best on the training folds kept. */
  penalties: z.array(z.number().positive()).min(1).default([0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1]),
  /** 'grey' feeds the frame's luma to an RGB network's three channels. */
  colour: z.enum(['rgb', 'grey']).default('rgb'),
  /** What the network sees of the imaging sector, fitted per source (see PretrainedCfg.sector). */
  sector: z.enum(['off', 'mask', 'crop', 'warp']).default('off'),
  /** σ (input pixels) of a Gaussian low-pass before the network (PretrainedCfg.blur); 0 = none. */
  inputBlur: z.number().min(0).max(8).default(0),
  /** Anti-aliased downsampling of the first n stride-2 convolutions (PretrainedCfg.antiAlias; mobilenet_v1: 0–5). */
  antiAlias: z.number().int().min(0).max(5).default(0),
  /**
   * Self-supervised pretraining before the head: 'video-contrastive' trains MobileNet v1's last
   * block on the fold's training frames with same-video positive pairs (src/train/pretrain_video.ts).
   */
  pretrain: z.enum(PRETRAIN_KINDS).default('none'),
  /** Steps of that pretraining (32 videos, two frames each, per step). */
  pretrainSteps: z.number().int().positive().default(150),
  /** Decoupled weight decay (AdamW) on the trainable kernels, per step: w -= lr * weightDecay * w. */
  weightDecay: z.number().min(0).default(0),
  /** Targets (1 - ε)·onehot + ε/K. */
  labelSmoothing: z.number().min(0).lt(1).default(0),
  /** Mixup on the trainable part's inputs (cached features) with λ ~ Beta(α, α); 0 = off. */
  mixup: z.number().min(0).default(0),
  /** Augmented views per training image computed once by the frozen backbone (the feature cache). */
  views: z.number().int().positive().default(4),
  /** 'auto' = cache when a frozen backbone exists; 'off' runs the whole network every step. */
  featureCache: z.enum(['auto', 'off']).default('auto'),
  seed: z.number().int().default(0),
  init: z.string().optional(),
  classWeights: z.enum(CLASS_WEIGHTING).default('none'),
  /** Share of the training folds' patients held out for model selection. */
  validationFraction: z.number().gt(0).lt(1).default(0.2),
  earlyStoppingPatience: z.number().int().positive().default(20),
  plateauPatience: z.number().int().positive().default(7),
  plateauFactor: z.number().gt(0).lt(1).default(0.7),
  /** Classes to train on, in output order; default: those of the dataset (without viral). */
  classes: z.array(z.string()).optional(),
  /** Input size override [h, w] (small phantom runs); default: the model's pretrained config. */
  inputSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
  dropout: z.number().min(0).lt(1).optional(),
  /** Split-conformal prediction sets calibrated on the validation split (src/eval/conformal.ts): the score and the default coverage. */
  conformal: z.enum(CONFORMAL_METHODS).default('aps'),
  coverage: z.number().gt(0).lt(1).default(DEFAULT_COVERAGE),
  /** Engine of the frozen backbone's forward pass (feature cache): 'auto' = ONNX Runtime where it loads. */
  runtime: z.enum(['auto', 'ort', 'tfjs']).default('auto'),
});

export type TrainConfigInput = z.input<typeof trainConfigSchema>;
export type TrainConfig = z.output<typeof trainConfigSchema>;

/** The options a model's recipe sets when the command line leaves them unset. */
export const RECIPE_FIELDS = ['head', 'trainableLayers', 'colour', 'classWeights', 'classBias', 'augment', 'sector', 'inputBlur', 'antiAlias'] as const;
export type RecipeField = (typeof RECIPE_FIELDS)[number];
export type ModelRecipe = Partial<Pick<TrainConfigInput, RecipeField>>;

/**
 * The best honest recipe measured per model (docs/results.md#accuracy-under-the-patient-protocol):
 * `pocovid train`, `cv` and `sweep` fill the recipe options a user leaves unset from here, before
 * the schema's own defaults. mobilenet_v1: a logistic head on the frozen ImageNet features of the
 * grey frame inside its imaging sector, every video weighing the same within its class, per-class
 * offsets fitted on patients the fit did not see, a σ = 1 pixel low-pass on the input, which
 * halves the labels a codec, a resize kernel or a grey level of noise flips at the same accuracy,
 * and the first stride-2 conv anti-aliased, which moves the probabilities a third less again and
 * raises frame balanced accuracy (docs/results.md#stability-of-decisions; anti-aliasing the
 * deeper ones loses accuracy with frozen ImageNet weights). Models without an entry keep the schema's
 * defaults (POCOVID-Net's recipe). The library (resolveTrainConfig) takes what it is given.
 */
export const MODEL_RECIPES: Readonly<Record<string, ModelRecipe>> = {
  mobilenet_v1: { head: 'logistic', trainableLayers: 0, colour: 'grey', classWeights: 'source', classBias: 'fitted', augment: false, sector: 'mask', inputBlur: 1, antiAlias: 1 },
};

/** `input` with every recipe option it leaves unset taken from its model's recipe. */
export function withModelRecipe<T extends { model: string } & ModelRecipe>(input: T): T {
  const recipe = MODEL_RECIPES[input.model];
  if (!recipe) return input;
  const filled: T = { ...input };
  for (const field of RECIPE_FIELDS) if (filled[field] === undefined && recipe[field] !== undefined) (filled as ModelRecipe)[field] = recipe[field] as never;
  return filled;
}

/** How a recipe option's default reads in --help. */
export function recipeDefaultText(field: RecipeField): string {
  const schemaDefault = (trainConfigSchema.shape[field] as z.ZodType).safeParse(undefined);
  const shown = (value: unknown): string => (typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value));
  const fallback = schemaDefault.success && schemaDefault.data !== undefined ? shown(schemaDefault.data) : "the model's own";
  const byModel = Object.entries(MODEL_RECIPES)
    .filter(([, recipe]) => recipe[field] !== undefined)
    .map(([model, recipe]) => `${model}: ${shown(recipe[field])}`);
  return [...byModel, `other models: ${fallback}`].join('; ');
}

export function resolveTrainConfig(input: TrainConfigInput): TrainConfig {
  const config = trainConfigSchema.parse(input);
  if (config.invariance > 0) {
    const missing = [
      config.head === 'logistic' ? '' : '--head logistic',
      config.augment ? '' : '--augment on',
      config.views >= 2 ? '' : '--views 2 or more',
    ].filter(Boolean);
    if (missing.length) throw new PocovidError(`--invariance ${config.invariance} penalises the head's change between a frame and its augmented views: it needs ${missing.join(', ')}`);
  }
  return config;
}
