// Calibration for int8 quantisation: runs the float graph with every quantisation point exposed
// as an output over real input frames and records each point's range, then writes the QDQ graph.
import type * as tfl from '@tensorflow/tfjs-layers';
import { PocovidError } from '../errors.js';
import type { OnnxExportOptions, OnnxExportResult } from './export.js';
import { calibrationGraph, quantizedModelToOnnx, uint8Params, type QdqOptions, type ValueRange } from './quantize.js';
import { createOrtSession, loadOrt, type OrtModule } from './runtime.js';

/**
 * How a tensor's range is chosen from the calibration frames:
 * - 'minmax': the smallest and largest value seen. Nothing is clipped, but one rare large value
 *   coarsens the step for all the others.
 * - 'mse': the range (the min–max range shrunk by a common factor) that minimises the mean squared
 *   quantisation error over a histogram of every value seen, clipping included. MobileNet's
 *   ReLU6 layers reach 6 somewhere in almost every frame while most values are far smaller.
 */
export type CalibrationMethod = 'minmax' | 'mse';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'mse'];

export interface CalibrationOptions extends OnnxExportOptions {
  /** Default 'mse'. */
  method?: CalibrationMethod;
  threads?: number;
  load?: () => Promise<OrtModule>;
}

export interface Calibration {
  ranges: Map<string, ValueRange>;
  method: CalibrationMethod;
  /** How many frames were seen. */
  frames: number;
}

const HISTOGRAM_BINS = 2048;
const SHRINK_STEPS = 200;

type CalibrationInputs = Iterable<Float32Array> | AsyncIterable<Float32Array>;

/**
 * The range of every quantisation point over `inputs` (one example each, TF.js layout, as
 * model.predict takes them). 'mse' reads the frames twice (min–max, then histograms), so `inputs`
 * must be re-iterable (an array).
 */
export async function calibrateRanges(model: tfl.LayersModel, inputs: CalibrationInputs, options: CalibrationOptions = {}): Promise<Calibration> {
  const method = options.method ?? 'mse';
  if (!CALIBRATION_METHODS.includes(method)) throw new PocovidError(`unknown calibration method "${String(method)}" (choose ${CALIBRATION_METHODS.join(', ')})`);
  const ort = await (options.load ?? loadOrt)();
  const { result, points } = calibrationGraph(model, options);
  const shape = result.inputs[0]!.shape.slice(1) as number[];
  const size = shape.reduce((a, b) => a * b, 1);
  const session = await createOrtSession(result.bytes, { threads: options.threads, load: options.load });
  // Runs every frame through the float graph and hands each point's values to `visit`.
  const pass = async (visit: (point: string, data: Float32Array) => void): Promise<number> => {
    let frames = 0;
    for await (const input of inputs) {
      if (input.length !== size) throw new PocovidError(`calibration frame ${frames}: ${input.length} values, the model takes [${shape.join(', ')}] = ${size}`);
      const outputs = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, [1, ...shape]) });
      for (const point of points) visit(point, outputs[point]!.data as Float32Array);
      frames++;
    }
    return frames;
  };
  try {
    const ranges = new Map<string, ValueRange>(points.map((point) => [point, { min: Infinity, max: -Infinity }]));
    const frames = await pass((point, data) => {
      const range = ranges.get(point)!;
      let { min, max } = range;
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      range.min = min;
      range.max = max;
    });
    if (frames === 0) throw new PocovidError('calibration needs at least one frame');
    if (method === 'minmax') return { ranges, method, frames };

    const histograms = new Map(points.map((point) => [point, new Float64Array(HISTOGRAM_BINS)]));
    const again = await pass((point, data) => {
      const { min, max } = ranges.get(point)!;
      const histogram = histograms.get(point)!;
      const perBin = HISTOGRAM_BINS / (max - min || 1);
      for (let i = 0; i < data.length; i++) histogram[Math.min(HISTOGRAM_BINS - 1, Math.floor((data[i]! - min) * perBin))]! += 1;
    });
    if (again !== frames) throw new PocovidError(`calibration frames changed between passes (${frames}, then ${again}); pass an array`);
    const chosen = new Map<string, ValueRange>();
    for (const point of points) chosen.set(point, leastSquaredErrorRange(ranges.get(point)!, histograms.get(point)!));
    return { ranges: chosen, method, frames };
  } finally {
    await session.release();
  }
}

/**
 * The range t·[min, max] (t in (0, 1]; 0 always inside, as uint8Params makes it) whose uint8
 * quantisation of the histogrammed values has the least squared error, clipping included.
 */
export function leastSquaredErrorRange(full: ValueRange, histogram: Float64Array): ValueRange {
  const binWidth = (full.max - full.min) / histogram.length;
  if (!(binWidth > 0)) return full;
  let best = full;
  let bestError = Infinity;
  for (let step = SHRINK_STEPS; step >= 1; step--) {
    const t = step / SHRINK_STEPS;
    const candidate = { min: full.min * t, max: full.max * t };
    const { scale, zeroPoint } = uint8Params(candidate);
    let error = 0;
    for (let b = 0; b < histogram.length; b++) {
      const count = histogram[b]!;
      if (count === 0) continue;
      const value = full.min + (b + 0.5) * binWidth;
      const q = Math.min(255, Math.max(0, Math.round(value / scale) + zeroPoint));
      const d = (q - zeroPoint) * scale - value;
      error += count * d * d;
    }
    if (error < bestError) {
      bestError = error;
      best = candidate;
    }
  }
  return best;
}

export interface Int8Export extends Calibration {
  result: OnnxExportResult;
}

/** Calibrates `model` on `inputs` and returns its int8 QDQ ONNX graph. */
export async function quantizeModel(
  model: tfl.LayersModel,
  inputs: CalibrationInputs,
  options: CalibrationOptions & QdqOptions = {},
): Promise<Int8Export> {
  const calibration = await calibrateRanges(model, inputs, options);
  return { ...calibration, result: quantizedModelToOnnx(model, calibration.ranges, options) };
}
