// The recipes of a sweep, read from its grid file. The command line gives the base recipe (the
// options of `pocovid cv`); the grid file says what varies:
//
//   { "grid":    { "colour": ["rgb", "grey"], "classWeights": ["none", "source"] },
//     "recipes": [ { "name": "pocovid-head", "head": "pocovid", "trainableLayers": 1 } ] }
//
// "grid" gives every combination of its lists (here four recipes); "recipes" adds recipes one by
// one. Keys are the names config.json uses (camelCase; the CLI's kebab-case names are accepted
// too), values are JSON values as config.json holds them. Each recipe is checked against the
// training schema before anything runs, so a typo fails at once and names the file and the recipe.
import { PocovidError } from '../errors.js';
import { trainConfigSchema, type TrainConfigInput } from '../train/config.js';
import { readJsonFile } from '../util/json_file.js';

export interface Recipe {
  /** Folder name under <sweep>/recipes/. */
  name: string;
  /** What this recipe sets over the command line's options (config.json names). */
  overrides: Record<string, unknown>;
}

/** Options a recipe cannot change: the dataset, where it writes, and what is measured. */
const FIXED = ['data', 'out', 'fold', 'refit', 'classes'] as const;
/** The CLI names that are not the kebab-case of the config name. */
const CLI_ALIASES: Record<string, string> = { patience: 'earlyStoppingPatience' };

const VARIABLE = Object.keys(trainConfigSchema.shape).filter((k) => !(FIXED as readonly string[]).includes(k));
const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The config name of a grid key, or an error listing the keys a recipe may set. */
function configKey(key: string, file: string, where: string): string {
  const bare = key.replace(/^--/, '');
  const name = CLI_ALIASES[bare] ?? VARIABLE.find((k) => k === bare || kebab(k) === bare);
  if (name) return name;
  if ((FIXED as readonly string[]).includes(bare)) throw new PocovidError(`${file}: ${where}: "${key}" cannot vary within a sweep (every recipe uses the same ${FIXED.join(', ')}); give it on the command line`);
  throw new PocovidError(`${file}: ${where}: unknown option "${key}"; a recipe may set ${VARIABLE.join(', ')}`);
}

function slug(value: unknown): string {
  const text = Array.isArray(value) ? value.map(slug).join('x') : typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
  return text.replace(/[^A-Za-z0-9.]+/g, '-').replace(/^-+|-+$/g, '') || 'none';
}

/** A folder name from what the recipe sets: "colour-grey_class-weights-source". */
function nameOf(overrides: Record<string, unknown>): string {
  const parts = Object.entries(overrides).map(([k, v]) => `${kebab(k)}-${slug(v)}`);
  return parts.length ? parts.join('_') : 'base';
}

function normalise(entries: Record<string, unknown>, file: string, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entries)) {
    const name = configKey(key, file, where);
    if (name in out) throw new PocovidError(`${file}: ${where}: "${name}" is given twice`);
    out[name] = value;
  }
  return out;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every combination of the lists of `grid`, in the order the file gives keys and values. */
function combinations(grid: Record<string, unknown[]>): Record<string, unknown>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const [key, values] of Object.entries(grid)) out = out.flatMap((partial) => values.map((v) => ({ ...partial, [key]: v })));
  return out;
}

/** The recipes of `file`, each checked as a training config over `base` (the command line's options). */
export function readGrid(file: string, base: Omit<TrainConfigInput, 'fold'>): Recipe[] {
  const content = readJsonFile<unknown>(file, { what: 'the sweep grid' });
  if (!isPlainObject(content)) throw new PocovidError(`${file}: a sweep grid is a JSON object with "grid" and/or "recipes"`);
  const unknown = Object.keys(content).filter((k) => k !== 'grid' && k !== 'recipes' && k !== 'description');
  if (unknown.length) throw new PocovidError(`${file}: unknown field(s) ${unknown.map((k) => `"${k}"`).join(', ')}; a sweep grid has "grid" (lists of values, every combination) and/or "recipes" (a list of recipes), and may have a "description"`);
  const recipes: Recipe[] = [];
  if (content['grid'] !== undefined) {
    if (!isPlainObject(content['grid'])) throw new PocovidError(`${file}: "grid" must be an object of lists, e.g. {"colour": ["rgb", "grey"]}`);
    const grid = normalise(content['grid'], file, 'grid');
    for (const [key, values] of Object.entries(grid)) {
      if (!Array.isArray(values) || values.length === 0) throw new PocovidError(`${file}: grid: "${key}" must be a non-empty list of values`);
    }
    for (const overrides of combinations(grid as Record<string, unknown[]>)) recipes.push({ name: nameOf(overrides), overrides });
  }
  if (content['recipes'] !== undefined) {
    if (!Array.isArray(content['recipes'])) throw new PocovidError(`${file}: "recipes" must be a list of objects`);
    content['recipes'].forEach((entry: unknown, i: number) => {
      if (!isPlainObject(entry)) throw new PocovidError(`${file}: recipes[${i}] must be an object of options`);
      const { name, ...options } = entry;
      if (name !== undefined && (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name))) {
        throw new PocovidError(`${file}: recipes[${i}]: name ${JSON.stringify(name)} must be letters, digits, '.', '_' or '-' (it names a folder)`);
      }
      const overrides = normalise(options, file, `recipes[${i}]`);
      recipes.push({ name: (name as string | undefined) ?? nameOf(overrides), overrides });
    });
  }
  if (!recipes.length) throw new PocovidError(`${file}: no recipe: give "grid" (lists of values) and/or "recipes"`);
  const seen = new Map<string, number>();
  recipes.forEach((r, i) => {
    if (seen.has(r.name)) throw new PocovidError(`${file}: two recipes are named "${r.name}" (the ${seen.get(r.name)! + 1}. and the ${i + 1}.); name them apart`);
    seen.set(r.name, i);
  });
  for (const recipe of recipes) {
    const parsed = trainConfigSchema.safeParse({ ...base, ...recipe.overrides, fold: 0 });
    if (!parsed.success) {
      throw new PocovidError(`${file}: recipe "${recipe.name}": ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
  }
  return recipes;
}
