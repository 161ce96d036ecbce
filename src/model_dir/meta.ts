// What pocovid.json says about a model folder, and the one check of it: types and a zod schema,
// no file access, so the in-browser page validates the pocovid.json it fetches with the same
// rules as the CLI and server (src/model_dir/model_dir.ts reads the file and calls parseModelMeta).
import * as z from '../util/zod_mini.js';
import { conformalProblem, type ConformalCalibration } from '../eval/conformal.js';
import { isGuardStats, type GuardStats } from '../guard/guard.js';
import type { PretrainedCfg } from '../models/types.js';
import { fileDigestsSchema, type FileDigests } from '../util/digest_rule.js';

export const MODEL_DIR_FORMAT = 'pocovid-model';
export const MODEL_DIR_VERSION = 1;
export { MODEL_META_FILE } from './names.js';

export type Aggregation = 'mean' | 'vote';

export interface ModelDirMeta {
  format: typeof MODEL_DIR_FORMAT;
  version: typeof MODEL_DIR_VERSION;
  name: string;
  classes: string[];
  cfg: PretrainedCfg;
  /** Sub-folder per ensemble member (one for a single model). */
  members: string[];
  /** How the members' probabilities are combined. */
  aggregation: Aggregation;
  createdAt: string;
  /** Where it came from (run folder, folds, config, metrics...). */
  source: Record<string, unknown>;
  /** Not-ultrasound guard fitted on the training frames (src/guard). */
  guard?: GuardStats;
  /**
   * sha256 and size of every member file ("member-0/weights.bin"...), checked whenever a member is
   * read or copied. Absent only in folders written before the check existed.
   */
  files?: FileDigests;
  /** Split-conformal calibration of the prediction sets (src/eval/conformal.ts). */
  conformal?: ConformalCalibration;
}

const weightSourceSchema = z.object({
  url: z.string(),
  sha256: z.string(),
  fileName: z.string(),
  licence: z.string(),
  format: z.enum(['keras-h5', 'keras-safetensors', 'torchvision-safetensors']),
  dropped: z.optional(z.array(z.string())),
});

const positiveInt = () => z.int().check(z.positive());

const cfgSchema = z.object({
  id: z.string(),
  inputSize: z.tuple([positiveInt(), positiveInt()]),
  channels: z.union([z.literal(1), z.literal(3)]),
  channelOrder: z.enum(['rgb', 'bgr']),
  colour: z.optional(z.enum(['rgb', 'grey'])),
  sector: z.optional(z.enum(['mask', 'crop', 'warp'])),
  blur: z.optional(z.number().check(z.positive(), z.maximum(8))),
  antiAlias: z.optional(positiveInt()),
  mean: z.array(z.number()),
  std: z.array(z.number()),
  camLayer: z.string(),
  classifier: z.string(),
  featureLayer: z.string(),
  sources: z.array(weightSourceSchema),
});

export const metaSchema = z.object({
  format: z.literal(MODEL_DIR_FORMAT),
  version: z.literal(MODEL_DIR_VERSION),
  name: z.string().check(z.minLength(1)),
  classes: z.array(z.string().check(z.minLength(1))).check(z.minLength(2)),
  cfg: cfgSchema,
  members: z.array(z.string().check(z.regex(/^member-\d+$/))).check(z.minLength(1)),
  aggregation: z.enum(['mean', 'vote']),
  createdAt: z.string(),
  source: z.record(z.string(), z.unknown()),
  guard: z.optional(z.custom<GuardStats>(isGuardStats, { message: 'not a pocovid guard (kind "pocovid-guard", version 1)' })),
  files: z.optional(fileDigestsSchema),
  conformal: z.optional(
    z.unknown().check(
      z.superRefine((value, ctx) => {
        const problem = value === undefined ? undefined : conformalProblem(value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    ),
  ),
});

/** Validates a parsed pocovid.json; throws an Error listing every problem (callers wrap it in their own error type). */
export function parseModelMeta(raw: unknown): ModelDirMeta {
  const parsed = metaSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`not a valid pocovid model description: ${problems}`);
  }
  return parsed.data as ModelDirMeta;
}
