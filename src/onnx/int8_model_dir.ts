// `pocovid export --format onnx --int8`: an int8 ONNX graph beside each member of a model folder,
// calibrated on frames of a dataset or a folder of images and videos, and int8.json recording how,
// with a label-free check of how closely each int8 member follows its float self on other frames.
// predict/serve use these files with --precision int8; int8.json's fingerprints stop a stale file
// (the member re-exported since) from being used.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../engine/index.js';
import { BadInputError, PocovidError } from '../errors.js';
import { argMax } from '../decision/combine.js';
import { loadModelDir } from '../model_dir/model_dir.js';
import { writeFileAtomic, writeJsonAtomicSync } from '../util/atomic.js';
import { digestOf, readVerified } from '../util/integrity.js';
import { readJsonFile } from '../util/json_file.js';
import { createRng } from '../util/rng.js';
import { modelFingerprint } from './cache.js';
import { quantizeModel, type CalibrationMethod } from './calibrate.js';
import { openFrameSource, type FrameSource } from './calibration_frames.js';
import { DEFAULT_OPSET, modelToOnnx } from './export.js';
import { createOrtRunner, type ForwardRunner } from './runtime.js';

export const INT8_MEMBER_FILE = 'model.int8.onnx';
export const INT8_REPORT_FILE = 'int8.json';
/** Below this share of check frames with the float label, the export warns. */
export const INT8_AGREEMENT_WARNING = 0.98;

export interface Int8ExportOptions {
  /**
   * A dataset folder written by `pocovid data build` (its labels are not used), or a folder of
   * images and videos (videos sampled as predict samples them).
   */
  frames: string;
  /** Frames that set the ranges (default 200; a video gives up to 30). */
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
  /** sha256 and size of the int8 file, checked before it is used (absent in reports of older versions). */
  sha256?: string;
  bytes?: number;
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
  /** The folder the frames came from, and whether it is a dataset or a plain folder. */
  frames: string;
  framesKind: FrameSource['kind'];
  seed: number;
  method: CalibrationMethod;
  reduceRange: boolean;
  floatLayers: string[];
  opset: number;
  /** Files (relative to `frames`) whose frames set the ranges, and those of the check. */
  calibrationFiles: string[];
  checkFiles: string[];
  calibrationFrameCount: number;
  checkFrameCount: number;
  skippedFiles: { path: string; problem: string }[];
  members: Int8MemberReport[];
}

/**
 * Reads items from `order` until `want` frames are in hand (a video's extra frames are dropped);
 * unreadable items are reported, not fatal. Returns the frames, the items used, and where it stopped.
 */
async function readFrames(
  source: FrameSource,
  order: readonly string[],
  want: number,
  skipped: Int8Report['skippedFiles'],
  warn: (line: string) => void,
): Promise<{ items: string[]; inputs: Float32Array[]; next: number }> {
  const out = { items: [] as string[], inputs: [] as Float32Array[], next: 0 };
  while (out.inputs.length < want && out.next < order.length) {
    const item = order[out.next++]!;
    try {
      const inputs = await source.read(item);
      out.inputs.push(...inputs.slice(0, want - out.inputs.length));
      out.items.push(item);
    } catch (error) {
      const problem = (error as Error).message;
      skipped.push({ path: item, problem });
      warn(`warning: ${join(source.dir, item)}: skipped (${problem})`);
    }
  }
  return out;
}

/** Float and int8 on the same frames, each graph over all of them in turn (so neither's threads wait on the other's). */
async function compare(fp32: ForwardRunner, int8: ForwardRunner, inputs: Float32Array[]) {
  const classify = async (runner: ForwardRunner): Promise<{ outputs: Float32Array[]; ms: number }> => {
    const outputs: Float32Array[] = [];
    const started = performance.now();
    for (const input of inputs) outputs.push((await runner.run(input, 1))[0]!.slice());
    return { outputs, ms: (performance.now() - started) / inputs.length };
  };
  const a = await classify(fp32);
  const b = await classify(int8);
  let agree = 0;
  let maxChange = 0;
  let sumChange = 0;
  let values = 0;
  inputs.forEach((_, i) => {
    const [p, q] = [a.outputs[i]!, b.outputs[i]!];
    if (argMax(p) === argMax(q)) agree++;
    for (let k = 0; k < p.length; k++) {
      const d = Math.abs(p[k]! - q[k]!);
      maxChange = Math.max(maxChange, d);
      sumChange += d;
      values++;
    }
  });
  return {
    labelAgreement: agree / inputs.length,
    maxProbabilityChange: maxChange,
    meanProbabilityChange: sumChange / values,
    msPerFrame: { float: a.ms, int8: b.ms },
  };
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
  const loaded = await loadModelDir(dir);
  let source: FrameSource;
  try {
    source = openFrameSource(options.frames, loaded.meta.cfg);
  } catch (error) {
    for (const member of loaded.members) member.dispose();
    throw error;
  }
  const report: Int8Report = {
    format: 'pocovid-int8',
    version: 1,
    createdAt: new Date().toISOString(),
    frames: options.frames,
    framesKind: source.kind,
    seed,
    method: options.method ?? 'mse',
    reduceRange: options.reduceRange ?? true,
    floatLayers: options.floatLayers ?? [],
    opset: options.opset ?? DEFAULT_OPSET,
    calibrationFiles: [],
    checkFiles: [],
    calibrationFrameCount: 0,
    checkFrameCount: 0,
    skippedFiles: [],
    members: [],
  };
  try {
    // One seeded order of files: calibration files first, check files after them, so the two never share a file.
    const order = createRng(seed).shuffle([...source.items]);
    const calibration = await readFrames(source, order, calibrationCount, report.skippedFiles, warn);
    if (calibration.inputs.length === 0) throw new BadInputError(options.frames, 'no readable frame to calibrate on');
    const check = await readFrames(source, order.slice(calibration.next), checkCount, report.skippedFiles, warn);
    report.calibrationFiles = calibration.items;
    report.checkFiles = check.items;
    report.calibrationFrameCount = calibration.inputs.length;
    report.checkFrameCount = check.inputs.length;
    for (const [k, member] of loaded.members.entries()) {
      const name = loaded.meta.members[k]!;
      const quantised = await quantizeModel(member, calibration.inputs, { ...options, method: report.method, opset: report.opset });
      const file = join(dir, name, INT8_MEMBER_FILE);
      await writeFileAtomic(file, quantised.result.bytes);
      let checked: Awaited<ReturnType<typeof compare>> | undefined;
      if (check.inputs.length > 0) {
        const fp32 = await createOrtRunner(member, modelToOnnx(member, { opset: report.opset }).bytes, { threads: options.threads });
        const int8 = await createOrtRunner(member, quantised.result.bytes, { threads: options.threads });
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
        ...digestOf(quantised.result.bytes),
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
  const how = `make it with: pocovid export --run <run> --out ${dir} --format onnx --int8 --calibration <frames>`;
  if (!existsSync(reportFile)) throw new BadInputError(reportFile, `missing: --precision int8 needs the int8 members of a model folder; ${how}`);
  const report = readJsonFile<Int8Report>(reportFile, { what: 'the int8 report', hint: how });
  if (report === null || typeof report !== 'object' || report.format !== 'pocovid-int8' || report.version !== 1 || !Array.isArray(report.members)) {
    throw new BadInputError(reportFile, 'not a pocovid int8 report (format "pocovid-int8", version 1)');
  }
  return members.map(({ name, model }) => {
    const entry = report.members.find((m) => m.member === name);
    const file = join(dir, name, INT8_MEMBER_FILE);
    if (!entry || !existsSync(file)) throw new BadInputError(file, `missing; ${how}`);
    if (entry.fingerprint !== modelFingerprint(model, report.opset)) {
      throw new BadInputError(file, `stale: made from other weights than ${join(dir, name)} now holds; ${how}`);
    }
    if (entry.sha256 !== undefined && entry.bytes !== undefined) readVerified(file, { sha256: entry.sha256, bytes: entry.bytes }, reportFile, how);
    return file;
  });
}
