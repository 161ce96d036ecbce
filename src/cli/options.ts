// The one option parser of every command: each option value is checked while commander parses
// the command line, before any action runs, so a bad value writes nothing (no run folder, no
// output file). Every rejection is a commander InvalidArgumentError whose message says what the
// value must be; main.ts prints it as one line (`pocovid: option '--port <n>' argument '70000' is
// invalid. Expected a whole number from 0 to 65535.`) and exits 2, as for every user error.
// Ranges of training options come from the zod schema in src/train/config.ts (schemaNumber), so
// a rule and its default live in one place.
import { InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';

/** What a number option accepts; bounds are inclusive unless marked exclusive. */
export interface NumberRange {
  integer?: boolean;
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}

/** Bounds as large as these are the integer type's, not a rule worth telling the user. */
const SAFE = Number.MAX_SAFE_INTEGER;

/** "a whole number from 1 to 65535", "a number > 0 and < 1", "a whole number ≥ 1"... */
export function describeRange(range: NumberRange): string {
  const kind = range.integer ? 'a whole number' : 'a number';
  let { min, max } = range;
  let exclusiveMin = range.exclusiveMin ?? false;
  let exclusiveMax = range.exclusiveMax ?? false;
  // For whole numbers "> 0" reads better as "≥ 1".
  if (range.integer && min !== undefined && exclusiveMin) [min, exclusiveMin] = [Math.floor(min) + 1, false];
  if (range.integer && max !== undefined && exclusiveMax) [max, exclusiveMax] = [Math.ceil(max) - 1, false];
  const hasMin = min !== undefined && min > -SAFE;
  const hasMax = max !== undefined && max < SAFE;
  if (hasMin && hasMax && !exclusiveMin && !exclusiveMax) return `${kind} from ${min} to ${max}`;
  const parts: string[] = [];
  if (hasMin) parts.push(`${exclusiveMin ? '>' : '≥'} ${min}`);
  if (hasMax) parts.push(`${exclusiveMax ? '<' : '≤'} ${max}`);
  return parts.length === 0 ? kind : `${kind} ${parts.join(' and ')}`;
}

const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function inRange(n: number, range: NumberRange): boolean {
  if (!Number.isFinite(n)) return false;
  if (range.integer && !Number.isSafeInteger(n)) return false;
  if (range.min !== undefined && (range.exclusiveMin ? n <= range.min : n < range.min)) return false;
  if (range.max !== undefined && (range.exclusiveMax ? n >= range.max : n > range.max)) return false;
  return true;
}

function expected(description: string): InvalidArgumentError {
  return new InvalidArgumentError(`Expected ${description}.`);
}

/** Text → number in `range`; anything else (abc, 1.5 for a whole number, '', 0x10) is refused. */
export function numberIn(range: NumberRange): (value: string) => number {
  const description = describeRange(range);
  return (value: string): number => {
    const text = value.trim();
    const n = (range.integer ? INTEGER_TEXT : NUMBER_TEXT).test(text) ? Number(text) : NaN;
    if (!inRange(n, range)) throw expected(description);
    return n;
  };
}

/** A whole number in [min, max] (either bound optional). */
export const integer = (min?: number, max?: number): ((value: string) => number) => numberIn({ integer: true, min, max });

/** A TCP port; 0 lets the system choose a free one (the address is printed). */
export const port = integer(0, 65535);

/** Seeds of the random streams: any whole number. */
export const seed = integer();

/** Video frames per second sampled: the decoder's range (0, 60]. */
export const fps = numberIn({ min: 0, exclusiveMin: true, max: 60 });

interface JsonNumberSchema {
  type?: string;
  enum?: string[];
  items?: JsonNumberSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  default?: unknown;
}

function jsonSchemaOf(schema: z.ZodType): JsonNumberSchema {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonNumberSchema;
}

/** The range a zod number schema accepts, as NumberRange (read through its JSON Schema). */
export function rangeOfSchema(schema: z.ZodType): NumberRange {
  const json = jsonSchemaOf(schema);
  if (json.type !== 'number' && json.type !== 'integer') throw new Error(`rangeOfSchema: not a number schema (${JSON.stringify(json)})`);
  return {
    integer: json.type === 'integer',
    ...(json.exclusiveMinimum !== undefined ? { min: json.exclusiveMinimum, exclusiveMin: true } : json.minimum !== undefined ? { min: json.minimum } : {}),
    ...(json.exclusiveMaximum !== undefined ? { max: json.exclusiveMaximum, exclusiveMax: true } : json.maximum !== undefined ? { max: json.maximum } : {}),
  };
}

/** The default a schema fills in (undefined when it has none). */
export function schemaDefault<T = unknown>(schema: z.ZodType): T | undefined {
  return jsonSchemaOf(schema).default as T | undefined;
}

/** Parser of a number option whose rule is a zod schema: the schema decides, its range is described. */
export function schemaNumber(schema: z.ZodType): (value: string) => number {
  const range = rangeOfSchema(schema);
  const parse = numberIn(range);
  return (value: string): number => {
    const n = parse(value);
    if (!schema.safeParse(n).success) throw expected(describeRange(range));
    return n;
  };
}

/** Comma-separated values, each parsed by `item`; empty entries are dropped, an empty list refused. */
export function listOf<T>(item: (value: string) => T, what = 'a comma-separated list'): (value: string) => T[] {
  return (value: string): T[] => {
    const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
    if (parts.length === 0) throw expected(what);
    return parts.map((part) => {
      try {
        return item(part);
      } catch (err) {
        if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`"${part}": ${err.message}`);
        throw err;
      }
    });
  };
}

/** Comma-separated names. */
export const names = listOf((s) => s, 'a comma-separated list of names');

/** One of a fixed set, or several of it comma-separated (commander's .choices() takes one only). */
export function someOf<T extends string>(choices: readonly T[], extra: readonly string[] = []): (value: string) => T[] {
  return listOf((s) => {
    if (!(choices as readonly string[]).includes(s) && !extra.includes(s)) throw expected(`one of ${[...choices, ...extra].join(', ')}`);
    return s as T;
  }, `a comma-separated list of ${[...choices, ...extra].join(', ')}`);
}

/** Comma-separated numbers, each in the range the array schema's items allow, the whole list checked by the schema. */
function numberList(schema: z.ZodType, items: JsonNumberSchema): (value: string) => number[] {
  const range: NumberRange = {
    integer: items.type === 'integer',
    ...(items.exclusiveMinimum !== undefined ? { min: items.exclusiveMinimum, exclusiveMin: true } : items.minimum !== undefined ? { min: items.minimum } : {}),
    ...(items.exclusiveMaximum !== undefined ? { max: items.exclusiveMaximum, exclusiveMax: true } : items.maximum !== undefined ? { max: items.maximum } : {}),
  };
  const what = `a comma-separated list of ${describeRange(range).replace(/^an? /, '').replace(/^number/, 'numbers').replace(/^whole number/, 'whole numbers')}`;
  const parse = listOf(numberIn(range), what);
  return (value: string): number[] => {
    const list = parse(value);
    if (!schema.safeParse(list).success) throw expected(what);
    return list;
  };
}

/**
 * An option whose rule and default come from a zod schema: numbers are checked by the schema,
 * enums become commander choices, booleans are written on|off.
 */
export function optionFromSchema(flags: string, description: string, schema: z.ZodType): Option {
  const json = jsonSchemaOf(schema);
  const option = new Option(flags, description);
  if (json.enum) option.choices(json.enum);
  else if (json.type === 'number' || json.type === 'integer') option.argParser(schemaNumber(schema));
  else if (json.type === 'boolean') option.argParser(onOff);
  else if (json.type === 'array' && (json.items?.type === 'number' || json.items?.type === 'integer')) option.argParser(numberList(schema, json.items));
  else throw new Error(`optionFromSchema: ${flags}: no parser for ${JSON.stringify(json)}`);
  const shown = json.type === 'boolean' ? (json.default ? 'on' : 'off') : Array.isArray(json.default) ? json.default.join(',') : undefined;
  if (json.default !== undefined) option.default(json.default, shown);
  return option;
}

/** `N` or `HxW` (also `H,W`): a picture size, [height, width], positive whole numbers. */
export function pictureSize(value: string): [number, number] {
  const parts = value.trim().split(/[x,]/);
  const sides = parts.map((p) => (INTEGER_TEXT.test(p.trim()) ? Number(p) : NaN));
  const [h, w] = sides.length === 1 ? [sides[0]!, sides[0]!] : sides;
  if (sides.length > 2 || !(Number.isSafeInteger(h) && Number.isSafeInteger(w) && h! > 0 && w! > 0)) throw expected('N or HxW, whole numbers ≥ 1');
  return [h!, w!];
}

/** on | off. */
export function onOff(value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw expected('on or off');
}
