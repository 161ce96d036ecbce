// Types shared by every backbone, the trainer, explanations, inference and export.
import type * as tfl from '@tensorflow/tfjs-layers';

/** Where a weight set can be had. `format` says how names and layouts map onto our layers. */
export interface WeightSource {
  /** Public URL (downloaded by `pocovid weights fetch`). */
  url: string;
  /** Lower-case hex sha256 of the file at `url`. */
  sha256: string;
  /** File name in the cache folder. */
  fileName: string;
  licence: string;
  /**
   * keras-h5: Keras HDF5 (`layer/layer/kernel:0`, HWIO kernels);
   * keras-safetensors: Keras names (`layer/kernel`), HWIO / HWC1 kernels;
   * torchvision-safetensors: torchvision names (`layer4.1.conv2.weight`), OIHW kernels.
   */
  format: 'keras-h5' | 'keras-safetensors' | 'torchvision-safetensors';
  /** Tensor names in the file that are deliberately not loaded (e.g. the ImageNet classifier). */
  dropped?: string[];
}

/**
 * Everything about a model's input and explanation layer that other code needs.
 * Preprocessing is derived from this and nowhere else: x = (pixel / 255 - mean[c]) / std[c].
 */
export interface PretrainedCfg {
  /** e.g. "vgg16.keras_imagenet" or "grayscale_cnn.scratch". */
  id: string;
  /** [height, width]. */
  inputSize: [number, number];
  /** 3 = RGB, 1 = grey (luma of the decoded frame). */
  channels: 1 | 3;
  /** Channel order fed to the network when channels = 3. */
  channelOrder: 'rgb' | 'bgr';
  /**
   * 'grey' feeds the luma of the frame to all three channels of an RGB network: ultrasound is
   * grey, and a colour tint from a screen capture or a scanner preset identifies the source, not
   * the lung. Absent means 'rgb' (1-channel networks always take the luma).
   */
  colour?: 'rgb' | 'grey';
  /**
   * What the network sees of the imaging sector (src/data/sector.ts), fitted per source (a video
   * from its frames, an image from itself): 'mask' blacks out the screen around it, 'crop'
   * enlarges its bounding box, 'warp' unrolls a convex fan into depth × angle. Absent: the frame
   * as it is.
   */
  sector?: 'mask' | 'crop' | 'warp';
  /**
   * σ in input pixels of a Gaussian low-pass on the frame before the network (src/models/blur.ts):
   * decisions then do not move with a codec, a resize kernel or a grey level of noise. Absent: none.
   */
  blur?: number;
  /**
   * How many of the backbone's stride-2 convolutions, from the input, run at stride 1 with a fixed
   * binomial low-pass subsampling their output (src/models/anti_alias.ts), so that their features
   * do not alias. The layers are in the model itself; this records that they are. Absent: none.
   */
  antiAlias?: number;
  mean: number[];
  std: number[];
  /** Layer whose output Grad-CAM / CAM uses. */
  camLayer: string;
  /** Name of the final Dense layer (the classifier). */
  classifier: string;
  /** Name of the penultimate feature layer (t-SNE). */
  featureLayer: string;
  sources: WeightSource[];
}

/**
 * 'pocovid': the model's own head (POCOVID-Net's pool → Dense 64 → [BatchNorm] → ReLU → Dropout →
 * softmax; the CAM head for vgg16_cam). 'linear': global average pooling → Dropout → softmax, a
 * logistic regression on the pooled features (the CAM head), far fewer weights to fit.
 */
export type HeadKind = 'pocovid' | 'linear';
export const HEAD_KINDS: readonly HeadKind[] = ['pocovid', 'linear'];

export interface ModelOptions {
  /** 2, 3 or 4 classes. */
  numClasses: number;
  /** Trainable conv layers counted from the end of the backbone (each with its BatchNorm); default per model. */
  trainableLayers?: number;
  /** Dropout rate in the head; default per model. */
  dropout?: number;
  /** Seed for weight initialisation. */
  seed?: number;
  /** [height, width]; overrides cfg.inputSize (small inputs for tests; the returned cfg reflects it). */
  inputSize?: [number, number];
  /** Default: the model's own head. */
  head?: HeadKind;
  /** 'grey' sets cfg.colour (RGB networks only); default 'rgb'. */
  colour?: 'rgb' | 'grey';
  /** Sets cfg.sector; default 'off' (the frame as it is). */
  sector?: 'off' | 'mask' | 'crop' | 'warp';
  /** Sets cfg.blur (σ in pixels); 0 or absent: no blur. */
  blur?: number;
  /** Anti-alias the first n stride-2 convolutions (sets cfg.antiAlias); mobilenet_v1 only (0–5). */
  antiAlias?: number;
}

/**
 * A built model. `model` is one flat functional Layers model, input → softmax probabilities,
 * with Keras-style layer names (this is what is saved, exported and loaded in the page).
 * `backbone` and `head` are cut from it and SHARE its layers/weights: backbone = the frozen part
 * (input → the tensors the trainable part reads), head = the trainable part (those tensors → probabilities).
 * model(x) = head(backbone(x)). When nothing is frozen, backbone is undefined and head === model.
 */
export interface BuiltModel {
  name: string;
  cfg: PretrainedCfg;
  numClasses: number;
  trainableLayers: number;
  model: tfl.LayersModel;
  backbone: tfl.LayersModel | undefined;
  head: tfl.LayersModel;
}

export interface ModelSpec {
  name: string;
  description: string;
  /** Default pretrained config (with its weight sources). */
  cfg: PretrainedCfg;
  defaultTrainableLayers: number;
  build(options: ModelOptions): BuiltModel;
}
