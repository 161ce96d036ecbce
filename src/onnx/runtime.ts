// Gradient-free forward passes on either engine behind one interface: ONNX Runtime (4–5× faster on
// CPU, see design.md) where its native binding loads, else TF.js. Gradient work stays on TF.js.
import os from 'node:os';
import type * as tfl from '@tensorflow/tfjs-layers';
import type * as Ort from 'onnxruntime-node';
import { tf } from '../engine/index.js';
import { PocovidError, UnknownChoiceError } from '../errors.js';
import { cachedOnnxFile } from './cache.js';
import { modelToOnnx } from './export.js';

export type OrtModule = typeof Ort;
export type Runtime = 'ort' | 'tfjs';
export type RuntimeChoice = Runtime | 'auto';
export const RUNTIME_CHOICES: readonly RuntimeChoice[] = ['ort', 'tfjs', 'auto'];

/** A model's forward pass on one engine. Inputs and outputs use TF.js's layout (NHWC images). */
export interface ForwardRunner {
  readonly runtime: Runtime;
  /** One example's input shape (no batch axis), e.g. [224, 224, 3]. */
  readonly inputShape: readonly number[];
  /** Each output's shape per example, in the model's output order. */
  readonly outputShapes: readonly (readonly number[])[];
  /**
   * Runs `n` examples packed row-major in `batch` (n × inputShape); returns one array per model
   * output, each n × outputShape.
   */
  run(batch: Float32Array, n: number): Promise<Float32Array[]>;
  /** Frees the session (ONNX Runtime); the TF.js model is the caller's and is left alone. */
  dispose(): Promise<void>;
}

/** Checks a --runtime value. */
export function parseRuntimeChoice(value: string): RuntimeChoice {
  if (!(RUNTIME_CHOICES as readonly string[]).includes(value)) throw new UnknownChoiceError('runtime', value, RUNTIME_CHOICES);
  return value as RuntimeChoice;
}

let ortLoad: Promise<OrtModule> | undefined;

/**
 * Loads onnxruntime-node once; rejects with the reason when its native binding does not load.
 *
 * ONNX Runtime's telemetry (its Linux build carries Microsoft's 1DS client) is switched off
 * first, always, whatever the environment says:
 * - when the first session is made it reads /proc/self/cmdline and runs a recursive std::regex
 *   over it: a command line of ~32 kB (`pocovid predict` with ~400 file paths) exhausts the main
 *   thread's 8 MB stack and the process dies with SIGSEGV (exit 139);
 * - it would collect that command line, whose file names may identify patients, and a screening
 *   tool has no business reporting usage anywhere;
 * - it leaves an empty /tmp/mat-debug-<pid>.log behind for every process that creates a session
 *   (it does not follow TMPDIR).
 */
export function loadOrt(): Promise<OrtModule> {
  // Read by the native library when it starts its environment, after this assignment.
  process.env['ORT_DISABLE_TELEMETRY'] = '1';
  ortLoad ??= import('onnxruntime-node').then((module) => {
    // Node's ESM import of this CommonJS package puts module.exports on `default`.
    const ort = (module.default ?? module) as OrtModule;
    if (typeof ort.InferenceSession?.create !== 'function') throw new Error('onnxruntime-node has no InferenceSession');
    return ort;
  });
  return ortLoad;
}

export interface ChooseRuntimeOptions {
  /** Where the one-line notice goes when 'auto' falls back to TF.js; default stderr. */
  notice?: (line: string) => void;
  /** Injected loader (tests); default loadOrt. */
  load?: () => Promise<OrtModule>;
}

const firstLine = (error: unknown): string => String(error instanceof Error ? error.message : error).split('\n')[0]!;

const defaultNotice = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/**
 * 'ort' and 'tfjs' are taken as asked ('ort' throws when ONNX Runtime does not load); 'auto' is ort
 * where it loads, else tfjs with a one-line notice.
 */
export async function chooseRuntime(choice: RuntimeChoice | string, options: ChooseRuntimeOptions = {}): Promise<Runtime> {
  const runtime = parseRuntimeChoice(choice);
  if (runtime === 'tfjs') return 'tfjs';
  try {
    await (options.load ?? loadOrt)();
    return 'ort';
  } catch (error) {
    if (runtime === 'ort') throw new PocovidError(`ONNX Runtime (onnxruntime-node) does not load: ${firstLine(error)}`, { cause: error });
    (options.notice ?? defaultNotice)(`notice: ONNX Runtime unavailable (${firstLine(error)}); using TF.js`);
    return 'tfjs';
  }
}

/** Default ONNX Runtime threads: $POCOVID_THREADS, else every logical core (2 on the reference machine). */
export function defaultOrtThreads(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env['POCOVID_THREADS']);
  return Number.isInteger(n) && n >= 1 ? n : Math.max(1, os.availableParallelism());
}

export interface OrtSessionOptions {
  /** intra-op threads; default defaultOrtThreads(). */
  threads?: number;
  /**
   * Whether the intra-op threads spin after a run, waiting for the next (ORT's default, true).
   * Turn it off when several sessions run in turn, as a fold ensemble does frame by frame: the
   * idle sessions' spinning threads take the cores from the one running (ResNet-18 at 112²: 26 ms
   * a run instead of 11 with three sessions in turn on 2 cores). A lone session is 5–10% faster
   * with it on (bench/ort_spinning.ts).
   */
  spinning?: boolean;
  load?: () => Promise<OrtModule>;
}

/** An ONNX Runtime CPU session on an ONNX file path or bytes, with full graph optimisation. */
export async function createOrtSession(model: string | Uint8Array, options: OrtSessionOptions = {}): Promise<Ort.InferenceSession> {
  const ort = await (options.load ?? loadOrt)();
  const sessionOptions: Ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    intraOpNumThreads: options.threads ?? defaultOrtThreads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: options.spinning === false ? '0' : '1' } } },
  };
  try {
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, sessionOptions)
      : await ort.InferenceSession.create(model, sessionOptions);
  } catch (error) {
    const where = typeof model === 'string' ? model : 'ONNX model bytes';
    throw new PocovidError(`${where}: ONNX Runtime cannot load it: ${firstLine(error)}`, { cause: error });
  }
}

function exampleShape(shape: readonly (number | null)[], what: string, modelName: string): number[] {
  const rest = shape.slice(1);
  if (rest.some((d) => d === null)) throw new PocovidError(`model "${modelName}": ${what} shape ${JSON.stringify(shape)} is not static`);
  return rest as number[];
}

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function describeModel(model: tfl.LayersModel): { inputShape: number[]; outputShapes: number[][] } {
  if (model.inputs.length !== 1) throw new PocovidError(`model "${model.name}" has ${model.inputs.length} inputs; a forward runner takes one`);
  return {
    inputShape: exampleShape(model.inputs[0]!.shape, 'input', model.name),
    outputShapes: model.outputs.map((output) => exampleShape(output.shape, 'output', model.name)),
  };
}

function checkBatch(batch: Float32Array, n: number, inputShape: readonly number[]): void {
  if (!Number.isInteger(n) || n < 1) throw new PocovidError(`batch size must be a positive integer, got ${n}`);
  const expected = n * sizeOf(inputShape);
  if (batch.length !== expected) {
    throw new PocovidError(`batch has ${batch.length} values; ${n} × [${inputShape.join(', ')}] needs ${expected}`);
  }
}

/** TF.js forward pass (model.predict, inference mode). */
export function createTfjsRunner(model: tfl.LayersModel): ForwardRunner {
  const { inputShape, outputShapes } = describeModel(model);
  return {
    runtime: 'tfjs',
    inputShape,
    outputShapes,
    async run(batch, n) {
      checkBatch(batch, n, inputShape);
      const outputs = tf.tidy(() => {
        const predicted = model.predict(tf.tensor(batch, [n, ...inputShape]), { batchSize: n });
        return Array.isArray(predicted) ? predicted : [predicted];
      });
      try {
        return (await Promise.all(outputs.map((output) => output.data()))) as Float32Array[];
      } finally {
        tf.dispose(outputs);
      }
    },
    async dispose() {},
  };
}

/** ONNX Runtime forward pass over an existing session (whose graph came from modelToOnnx). */
export async function createOrtRunnerFromSession(
  session: Ort.InferenceSession,
  inputShape: readonly number[],
  outputShapes: readonly (readonly number[])[],
  options: { load?: () => Promise<OrtModule> } = {},
): Promise<ForwardRunner> {
  const ort = await (options.load ?? loadOrt)();
  const inputName = session.inputNames[0]!;
  const outputNames = session.outputNames;
  if (outputNames.length !== outputShapes.length) {
    throw new PocovidError(`ONNX session has ${outputNames.length} outputs; the model has ${outputShapes.length}`);
  }
  return {
    runtime: 'ort',
    inputShape,
    outputShapes,
    async run(batch, n) {
      checkBatch(batch, n, inputShape);
      const results = await session.run({ [inputName]: new ort.Tensor('float32', batch, [n, ...inputShape]) });
      return outputNames.map((name) => results[name]!.data as Float32Array);
    },
    async dispose() {
      await session.release();
    },
  };
}

/**
 * An ONNX Runtime runner for `model` on a graph of it (an ONNX file or bytes: modelToOnnx's, the
 * cache's, or its int8 form); shapes come from the model, so the graph must keep its inputs and outputs.
 */
export async function createOrtRunner(model: tfl.LayersModel, graph: string | Uint8Array, options: OrtSessionOptions = {}): Promise<ForwardRunner> {
  const { inputShape, outputShapes } = describeModel(model);
  const session = await createOrtSession(graph, options);
  return createOrtRunnerFromSession(session, inputShape, outputShapes, { load: options.load });
}

export interface ForwardRunnerOptions extends ChooseRuntimeOptions {
  /** Default 'auto'. */
  runtime?: RuntimeChoice;
  /** ONNX Runtime intra-op threads; default defaultOrtThreads(). */
  threads?: number;
  /** ONNX Runtime thread spinning (OrtSessionOptions.spinning); default true. */
  spinning?: boolean;
  /** Where exported ONNX files are cached (default $POCOVID_CACHE/onnx); false exports in memory every time. */
  cacheDir?: string | false;
  opset?: number;
}

/**
 * A forward runner for `model` on the chosen runtime. For ort the model is exported to ONNX (once
 * per distinct weights, through the cache). With 'auto', a model the exporter cannot convert also
 * falls back to TF.js with a notice; with 'ort' that is an error.
 */
export async function createForwardRunner(model: tfl.LayersModel, options: ForwardRunnerOptions = {}): Promise<ForwardRunner> {
  const choice = options.runtime ?? 'auto';
  const runtime = await chooseRuntime(choice, options);
  if (runtime === 'tfjs') return createTfjsRunner(model);
  describeModel(model); // a model no runner can take (several inputs, open shapes) fails here, before any export
  try {
    const source =
      options.cacheDir === false
        ? modelToOnnx(model, { opset: options.opset }).bytes
        : await cachedOnnxFile(model, { cacheDir: options.cacheDir, opset: options.opset });
    return await createOrtRunner(model, source, { threads: options.threads, spinning: options.spinning, load: options.load });
  } catch (error) {
    if (choice === 'ort') throw error;
    (options.notice ?? defaultNotice)(`notice: model "${model.name}" cannot run on ONNX Runtime (${firstLine(error)}); using TF.js`);
    return createTfjsRunner(model);
  }
}
