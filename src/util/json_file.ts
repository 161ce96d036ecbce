// Reading the JSON files a run, a dataset or a model folder is made of (config.json, result.json,
// checkpoint/state.json, pocovid.json, dataset.json...). A file cut by a kill or a full disk must
// give an error that names the file and says what to do, never a bare "SyntaxError: Unterminated
// string in JSON" from somewhere inside the program.
import { readFileSync } from 'node:fs';
import type { $ZodType } from 'zod/v4/core';
import * as z from './zod_mini.js';
import { BadInputError } from '../errors.js';

export interface ReadJsonOptions<T> {
  /** What the file is, for the message ("a fold summary", "the checkpoint state"). */
  what?: string;
  /** What the user can do about a damaged file ("delete it to train fold 2 again"). */
  hint?: string;
  /** Validates the parsed value (a zod schema of either build, classic or small); its problems are listed in the error. */
  schema?: $ZodType<T>;
}

function problemWith(what: string | undefined, text: string): string {
  return what ? `${text} (${what})` : text;
}

function withHint(message: string, hint: string | undefined): string {
  return hint ? `${message}; ${hint}` : message;
}

/** Parses `text` read from `file`; every failure is a BadInputError naming `file`. */
export function parseJsonText<T = unknown>(text: string, file: string, options: ReadJsonOptions<T> = {}): T {
  if (text.trim() === '') throw new BadInputError(file, withHint(problemWith(options.what, 'empty: the file is truncated'), options.hint));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const reason = (err as Error).message;
    throw new BadInputError(file, withHint(problemWith(options.what, `not valid JSON (${reason}): the file is truncated or damaged`), options.hint), { cause: err });
  }
  if (!options.schema) return value as T;
  const parsed = z.safeParse(options.schema, value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new BadInputError(file, withHint(problemWith(options.what, `not the expected content: ${problems}`), options.hint));
  }
  return parsed.data;
}

/** Reads and parses a JSON file; a missing, unreadable, truncated or invalid file is a BadInputError naming it. */
export function readJsonFile<T = unknown>(file: string, options: ReadJsonOptions<T> = {}): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'missing' : `cannot be read (${code ?? (err as Error).message})`;
    throw new BadInputError(file, withHint(problemWith(options.what, problem), options.hint), { cause: err });
  }
  return parseJsonText(text, file, options);
}
