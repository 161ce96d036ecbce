// An adaptation as it is kept: in the browser's IndexedDB, and as the file the page exports and
// loads again (pocovid-adaptation.json). It holds only what the adaptation changed — the trained
// weights of each member, by name, and the recalibrated prediction sets — never an image, a file
// name's frames or a feature, plus the result the panel showed. It names the model it was made
// for (its pocovid.json's sha256): loaded on another model it is refused. Browser-safe.
import * as z from '../util/zod_mini.js';
import { conformalProblem, type ConformalCalibration } from '../eval/conformal.js';
import { PocovidError } from '../errors.js';
import { UPDATE_MODES } from '../models/insert_layer.js';
import type { AdaptResult, MemberWeights } from './adapt.js';

export const ADAPTATION_FORMAT = 'pocovid-adaptation';
export const ADAPTATION_VERSION = 1;
export const ADAPTATION_FILE = 'pocovid-adaptation.json';

/** The model an adaptation belongs to. */
export interface AdaptedModelKey {
  name: string;
  /** sha256 of the model folder's pocovid.json, as served. */
  key: string;
}

export interface AdaptationRecord {
  format: typeof ADAPTATION_FORMAT;
  version: typeof ADAPTATION_VERSION;
  model: AdaptedModelKey;
  createdAt: string;
  result: AdaptResult;
  conformal: ConformalCalibration;
  members: MemberWeights[];
}

/** Float32 values as base64 of their little-endian bytes (JSON has no binary). */
export function floatsToBase64(values: Float32Array): string {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  let binary = '';
  // In slices: String.fromCharCode takes its arguments on the stack.
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function base64ToFloats(text: string): Float32Array {
  const binary = atob(text);
  if (binary.length % 4 !== 0) throw new PocovidError(`${binary.length} bytes are not a whole number of float32 values`);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

const nonNegativeInt = () => z.int().check(z.nonnegative());
const positiveInt = () => z.int().check(z.positive());
const nonEmpty = () => z.string().check(z.minLength(1));

const scoresSchema = z.object({ n: nonNegativeInt(), accuracy: z.number(), balancedAccuracy: z.number(), confusion: z.array(z.array(nonNegativeInt())) });

const fileSchema = z.object({
  format: z.literal(ADAPTATION_FORMAT),
  version: z.literal(ADAPTATION_VERSION),
  model: z.object({ name: nonEmpty(), key: nonEmpty() }),
  createdAt: z.string(),
  result: z.object({
    classes: z.array(z.string()).check(z.minLength(2)),
    settings: z.object({ mode: z.enum(UPDATE_MODES), epochs: positiveInt(), lr: z.number().check(z.positive()), batchSize: positiveInt(), seed: z.int(), heldOutFraction: z.number().check(z.gt(0), z.lt(1)) }),
    before: scoresSchema,
    after: scoresSchema,
    filesBefore: scoresSchema,
    filesAfter: scoresSchema,
    trainFrames: positiveInt(),
    heldOutFrames: positiveInt(),
    trainFiles: z.array(z.string()),
    heldOutFiles: z.array(z.string()),
    calibration: z.object({ frames: z.int(), videos: z.int(), needed: z.int(), coverage: z.number() }),
    seconds: z.number().check(z.nonnegative()),
  }),
  conformal: z.unknown().check(
    z.superRefine((value, ctx) => {
      const problem = conformalProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  ),
  members: z
    .array(
      z.object({
        addedLayer: z.optional(z.string()),
        weights: z.array(z.object({ name: nonEmpty(), shape: z.array(positiveInt()), base64: z.string() })).check(z.minLength(1)),
      }),
    )
    .check(z.minLength(1)),
});

/** The record as JSON text (the exported file, and what IndexedDB keeps). */
export function recordToJson(record: AdaptationRecord): string {
  const members = record.members.map((m) => ({
    ...(m.addedLayer ? { addedLayer: m.addedLayer } : {}),
    weights: m.weights.map((w) => ({ name: w.name, shape: w.shape, base64: floatsToBase64(w.values) })),
  }));
  return JSON.stringify({ ...record, members });
}

/**
 * Reads a record and checks it against the model it is to be applied to. `source` names where it
 * came from in every error ("my-site.json: …").
 */
export function recordFromJson(text: string, source: string, expected?: AdaptedModelKey): AdaptationRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PocovidError(`${source}: not JSON (${(err as Error).message})`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PocovidError(`${source}: not a pocovid adaptation (${issue.path.join('.') || 'top level'}: ${issue.message})`);
  }
  const data = parsed.data;
  if (expected && data.model.key !== expected.key) {
    throw new PocovidError(`${source}: made for another model ("${data.model.name}", pocovid.json ${data.model.key.slice(0, 12)}…), not this one ("${expected.name}", ${expected.key.slice(0, 12)}…)`);
  }
  const members = data.members.map((m, k) => ({
    ...(m.addedLayer ? { addedLayer: m.addedLayer } : {}),
    weights: m.weights.map((w) => {
      let values: Float32Array;
      try {
        values = base64ToFloats(w.base64);
      } catch (err) {
        throw new PocovidError(`${source}: member ${k}'s ${w.name}: ${(err as Error).message}`);
      }
      const count = w.shape.reduce((a, b) => a * b, 1);
      if (values.length !== count) throw new PocovidError(`${source}: member ${k}'s ${w.name} has ${values.length} values for shape ${w.shape.join('×')}`);
      return { name: w.name, shape: w.shape, values };
    }),
  }));
  return { ...data, conformal: data.conformal as ConformalCalibration, members } as AdaptationRecord;
}
