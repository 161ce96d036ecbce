// `pocovid export --format onnx --int8`: an int8 ONNX graph beside each member of a model folder,
// calibrated on frames of a built dataset, and int8.json recording how, with a label-free check of
// how closely each int8 member follows its float self on other frames of the same dataset.
// predict/serve use these files with --precision int8; int8.json's fingerprints stop a stale file
// (the member re-exported since) from being used.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { openDataset } from '../data/dataset.js';
import { readImageAsInput } from '../data/image.js';
import { initEngine } from '../engine/index.js';
import { BadInputError, PocovidError } from '../errors.js';
import { loadModelDir } from '../infer/model_dir.js';
import type { PretrainedCfg } from '../models/types.js';
import { writeFileAtomic, writeJsonAtomicSync } from '../util/atomic.js';
import { createRng } from '../util/rng.js';
import { modelFingerprint } from './cache.js';
import { quantizeModel, type CalibrationMethod } from './calibrate.js';
import { DEFAULT_OPSET, modelToOnnx } from './export.js';
import { createOrtRunnerFromSession, createOrtSession, type ForwardRunner } from './runtime.js';

export const INT8_MEMBER_FILE = 'model.int8.onnx';
export const INT8_REPORT_FILE = 'int8.json';
/** Below this share of check frames with the float label, the export warns. */
export const INT8_AGREEMENT_WARNING = 0.98;

export interface Int8ExportOptions {
  /** A dataset folder written by `pocovid data build` (manifest.csv); its labels are not used. */
  dataset: string;
  /** Frames that set the ranges (default 200). */
  calibrationFrames?: number;
  /** Other frames on which int8 is compared with float (default 200; 0 = no check). */
  checkFrames?: number;
  method?: CalibrationMethod;
  /** Which frames are drawn (default 0). */
  seed?: number;
  reduceRange?: boolean;
  floatLayers?: string[];
  opset?: number;
  threads?: number;
  /** Where per-frame warnings go (unreadable frames); default stderr. */
  warn?: (line: string) => void;
}

export interface Int8MemberReport {
  member: string;
  file: string;
  /** modelFingerprint of the float member the file was made from. */
  fingerprint: string;
  /** Share of check frames where int8 and float give the same label; null without a check. */
  labelAgreement: number | null;
  maxProbabilityChange: number | null;
  meanProbabilityChange: number | null;
  msPerFrame: { float: number; int8: number } | null;
}

export interface Int8Report {
  format: 'pocovid-int8';
  version: 1;
  createdAt: string;
  dataset: string;
  seed: number;
  method: CalibrationMethod;
  reduceRange: boolean;
  floatLayers: string[];
  opset: number;
  calibrationFrames: string[];
  checkFrames: string[];
  skippedFrames: { path: string; problem: string }[];
  members: Int8MemberReport[];
}

/** Decodes the frames that can be read; the others are reported, not fatal. */
async function readFrames(
  dir: string,
  paths: readonly string[],
  cfg: PretrainedCfg,
  want: number,
  skipped: Int8Report['skippedFrames'],
  warn: (line: string) => void,
): Promise<{ paths: string[]; inputs: Float32Array[] }> {
  const out = { paths: [] as string[], inputs: [] as Float32Array[] };
  for (const path of paths) {
    if (out.inputs.length === want) break;
    try {
      out.inputs.push(await readImageAsInput(join(dir, path), cfg));
      out.paths.push(path);
    } catch (error) {
      const problem = (error as Error).message;
      skipped.push({ path, problem });
      warn(`warning: ${join(dir, path)}: skipped (${problem})`);
    }
  }
  return out;
}

async function compare(fp32: ForwardRunner, int8: ForwardRunner, inputs: Float32Array[]) {
  let agree = 0;
  let maxChange = 0;
  let sumChange = 0;
  let values = 0;
  const time = { float: 0, int8: 0 };
  const argMax = (p: Float32Array): number => p.indexOf(Math.max(...p));
  for (const input of inputs) {
    let t = performance.now();
    const a = (await fp32.run(input, 1))[0]!;
    time.float += performance.now() - t;
    t = performance.now();
    const b = (await int8.run(input, 1))[0]!;
    time.int8 += performance.now() - t;
    if (argMax(a) === argMax(b)) agree++;
    for (let k = 0; k < a.length; k++) {
      const d = Math.abs(a[k]! - b[k]!);
      maxChange = Math.max(maxChange, d);
      sumChange += d;
      values++;
    }
  }
  return {
    labelAgreement: agree / inputs.length,
    maxProbabilityChange: maxChange,
    meanProbabilityChange: sumChange / values,
    msPerFrame: { float: time.float / inputs.length, int8: time.int8 / inputs.length },
  };
}

async function ortRunner(model: tfl.LayersModel, bytes: Uint8Array, threads?: number): Promise<ForwardRunner> {
  const session = await createOrtSession(bytes, { threads });
  return createOrtRunnerFromSession(session, model.inputs[0]!.shape.slice(1) as number[], [model.outputs[0]!.shape.slice(1) as number[]]);
}

/** Writes <dir>/<member>/model.int8.onnx for every member of model folder `dir`, and <dir>/int8.json. */
export async function exportModelDirInt8(dir: string, options: Int8ExportOptions): Promise<Int8Report> {
  const calibrationCount = options.calibrationFrames ?? 200;
  const checkCount = options.checkFrames ?? 200;
  if (!Number.isInteger(calibrationCount) || calibrationCount < 1) throw new PocovidError(`calibration frames must be a positive integer, got ${calibrationCount}`);
  if (!Number.isInteger(checkCount) || checkCount < 0) throw new PocovidError(`check frames must be a non-negative integer, got ${checkCount}`);
  const seed = options.seed ?? 0;
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  await initEngine();
  const dataset = openDataset(options.dataset);
  const loaded = await loadModelDir(dir);
  const report: Int8Report = {
    format: 'pocovid-int8',
    version: 1,
    createdAt: new Date().toISOString(),
    dataset: options.dataset,
    seed,
    method: options.method ?? 'mse',
    reduceRange: options.reduceRange ?? true,
    floatLayers: options.floatLayers ?? [],
    opset: options.opset ?? DEFAULT_OPSET,
    calibrationFrames: [],
    checkFrames: [],
    skippedFrames: [],
    members: [],
  };
  try {
    // One seeded order: calibration frames first, check frames after them, so the two never overlap.
    const order = createRng(seed).shuffle(dataset.rows.map((row) => row.path));
    const calibration = await readFrames(dataset.dir, order, loaded.meta.cfg, calibrationCount, report.skippedFrames, warn);
    if (calibration.inputs.length === 0) throw new BadInputError(options.dataset, 'no readable frame to calibrate on');
    const rest = order.slice(order.indexOf(calibration.paths.at(-1)!) + 1);
    const check = await readFrames(dataset.dir, rest, loaded.meta.cfg, checkCount, report.skippedFrames, warn);
    report.calibrationFrames = calibration.paths;
    report.checkFrames = check.paths;
    for (const [k, member] of loaded.members.entries()) {
      const name = loaded.meta.members[k]!;
      const quantised = await quantizeModel(member, calibration.inputs, { ...options, method: report.method, opset: report.opset });
      const file = join(dir, name, INT8_MEMBER_FILE);
      await writeFileAtomic(file, quantised.result.bytes);
      let checked: Awaited<ReturnType<typeof compare>> | undefined;
      if (check.inputs.length > 0) {
        const fp32 = await ortRunner(member, modelToOnnx(member, { opset: report.opset }).bytes, options.threads);
        const int8 = await ortRunner(member, quantised.result.bytes, options.threads);
        try {
          checked = await compare(fp32, int8, check.inputs);
        } finally {
          await fp32.dispose();
          await int8.dispose();
        }
      }
      report.members.push({
        member: name,
        file: join(name, INT8_MEMBER_FILE),
        fingerprint: modelFingerprint(member, report.opset),
        labelAgreement: checked?.labelAgreement ?? null,
        maxProbabilityChange: checked?.maxProbabilityChange ?? null,
        meanProbabilityChange: checked?.meanProbabilityChange ?? null,
        msPerFrame: checked?.msPerFrame ?? null,
      });
    }
  } finally {
    for (const member of loaded.members) member.dispose();
  }
  writeJsonAtomicSync(join(dir, INT8_REPORT_FILE), report);
  return report;
}

/**
 * The int8 ONNX file of each member of a loaded model folder, refusing a missing or stale one
 * (whose float member changed since it was made).
 */
export function int8MemberFiles(dir: string, members: readonly { name: string; model: tfl.LayersModel }[]): string[] {
  const reportFile = join(dir, INT8_REPORT_FILE);
  const how = `make it with: pocovid export --run <run> --out ${dir} --format onnx --int8 --calibration <dataset>`;
  if (!existsSync(reportFile)) throw new BadInputError(reportFile, `missing: --precision int8 needs the int8 members of a model folder; ${how}`);
  let report: Int8Report;
  try {
    report = JSON.parse(readFileSync(reportFile, 'utf8')) as Int8Report;
  } catch (error) {
    throw new BadInputError(reportFile, `unreadable (${(error as Error).message})`, { cause: error });
  }
  if (report.format !== 'pocovid-int8' || report.version !== 1 || !Array.isArray(report.members)) {
    throw new BadInputError(reportFile, 'not a pocovid int8 report (format "pocovid-int8", version 1)');
  }
  return members.map(({ name, model }) => {
    const entry = report.members.find((m) => m.member === name);
    const file = join(dir, name, INT8_MEMBER_FILE);
    if (!entry || !existsSync(file)) throw new BadInputError(file, `missing; ${how}`);
    if (entry.fingerprint !== modelFingerprint(model, report.opset)) {
      throw new BadInputError(file, `stale: made from other weights than ${join(dir, name)} now holds; ${how}`);
    }
    return file;
  });
}
