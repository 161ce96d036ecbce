// The one option parser: ranges from the training schema, one error line naming the option and
// the valid range, exit code 2, and nothing written when a value is refused.
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { describeRange, integer, listOf, numberIn, pictureSize, rangeOfSchema, schemaDefault, schemaNumber } from '../../src/cli/options.js';
import { trainConfigSchema } from '../../src/train/config.js';

let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'pocovid-options-'));
});

afterEach(() => {
  process.exitCode = 0;
});

async function run(args: string[]): Promise<{ out: string; err: string; code: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
  const writeErr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (err.push(String(chunk)), true));
  try {
    process.exitCode = 0;
    await main(['node', 'pocovid', ...args]);
    return { out: out.join('\n'), err: err.join('\n'), code: Number(process.exitCode ?? 0) };
  } finally {
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
    writeErr.mockRestore();
  }
}

describe('option values', () => {
  it('describes ranges in words, whole numbers with inclusive bounds', () => {
    expect(describeRange({ integer: true, min: 0, exclusiveMin: true, max: Number.MAX_SAFE_INTEGER })).toBe('a whole number ≥ 1');
    expect(describeRange({ integer: true, min: 0, max: 65535 })).toBe('a whole number from 0 to 65535');
    expect(describeRange({ min: 0, exclusiveMin: true, max: 1, exclusiveMax: true })).toBe('a number > 0 and < 1');
    expect(describeRange({ integer: true, min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER })).toBe('a whole number');
  });

  it('refuses text, fractions, hexadecimal, blanks and out-of-range values', () => {
    const parse = integer(1, 10);
    expect(parse('7')).toBe(7);
    expect(parse(' 10 ')).toBe(10);
    for (const bad of ['abc', '1.5', '0x5', '', '0', '11', '1e1', 'Infinity']) {
      expect(() => parse(bad), bad).toThrow(InvalidArgumentError);
      expect(() => parse(bad), bad).toThrow('Expected a whole number from 1 to 10.');
    }
    const real = numberIn({ min: 0, exclusiveMin: true });
    expect(real('1e-4')).toBe(1e-4);
    expect(real('.5')).toBe(0.5);
    expect(() => real('0')).toThrow('Expected a number > 0.');
    expect(() => real('NaN')).toThrow(InvalidArgumentError);
  });

  it('takes ranges and defaults from the training schema', () => {
    expect(rangeOfSchema(trainConfigSchema.shape.epochs)).toMatchObject({ integer: true, min: 0, exclusiveMin: true });
    expect(rangeOfSchema(trainConfigSchema.shape.validationFraction)).toEqual({ integer: false, min: 0, exclusiveMin: true, max: 1, exclusiveMax: true });
    expect(schemaDefault(trainConfigSchema.shape.epochs)).toBe(40);
    expect(schemaDefault(trainConfigSchema.shape.lr)).toBe(1e-4);
    expect(schemaDefault(trainConfigSchema.shape.augment)).toBe(true);
    const fraction = schemaNumber(trainConfigSchema.shape.validationFraction);
    expect(fraction('0.3')).toBe(0.3);
    expect(() => fraction('1')).toThrow('Expected a number > 0 and < 1.');
    const dropout = schemaNumber(trainConfigSchema.shape.dropout);
    expect(dropout('0')).toBe(0);
    expect(() => dropout('-0.1')).toThrow('Expected a number ≥ 0 and < 1.');
  });

  it('parses lists and picture sizes, naming the bad entry', () => {
    const folds = listOf(integer(0));
    expect(folds('0, 2,4')).toEqual([0, 2, 4]);
    expect(() => folds('0,x')).toThrow('"x": Expected a whole number ≥ 0.');
    expect(() => folds(',')).toThrow(InvalidArgumentError);
    expect(pictureSize('64')).toEqual([64, 64]);
    expect(pictureSize('48x64')).toEqual([48, 64]);
    for (const bad of ['0', '64x', 'ax4', '1x2x3', '-4']) expect(() => pictureSize(bad), bad).toThrow(InvalidArgumentError);
  });
});

describe('every command refuses a bad value the same way', () => {
  const cases: [string[], string, string][] = [
    [['cv', '--epochs', '0'], '--epochs <n>', 'a whole number ≥ 1'],
    [['cv', '--batch-size', '-1'], '--batch-size <n>', 'a whole number ≥ 1'],
    [['cv', '--folds', 'abc'], '--folds <list>', 'a whole number ≥ 0'],
    [['cv', '--validation-fraction', '1'], '--validation-fraction <f>', 'a number > 0 and < 1'],
    [['train', '--epochs', 'abc'], '--epochs <n>', 'a whole number ≥ 1'],
    [['train', '--fold', '-1'], '--fold <k>', 'a whole number ≥ 0'],
  ];
  for (const [args, option, range] of cases) {
    it(`${args.join(' ')}: one line, exit 2, no run folder`, async () => {
      const out = join(work, `run-${args.join('_')}`);
      const result = await run([...args, '--data', join(work, 'no-data'), '--model', 'grayscale_cnn', '--out', out]);
      expect(result.code).toBe(2);
      expect(result.err).toBe(`pocovid: option '${option}' argument '${args[2]}' is invalid. ${args[2] === 'abc' && option === '--folds <list>' ? '"abc": ' : ''}Expected ${range}.`);
      expect(result.out).toBe('');
      expect(existsSync(out)).toBe(false);
    });
  }

  const others: [string[], string][] = [
    [['serve', '--model', 'm', '--port', '70000'], "pocovid: option '--port <n>' argument '70000' is invalid. Expected a whole number from 0 to 65535."],
    [['serve', '--model', 'm', '--max-upload-mb', 'abc'], "pocovid: option '--max-upload-mb <n>' argument 'abc' is invalid. Expected a number > 0 and ≤ 100000."],
    [['serve', '--model', 'm', '--max-upload-mb', '-1'], "pocovid: option '--max-upload-mb <n>' argument '-1' is invalid. Expected a number > 0 and ≤ 100000."],
    [['predict', '--model', 'm', 'x.png', '--max-frames', 'abc'], "pocovid: option '--max-frames <n>' argument 'abc' is invalid. Expected a whole number ≥ 1."],
    [['predict', '--model', 'm', 'x.png', '--fps', '0'], "pocovid: option '--fps <n>' argument '0' is invalid. Expected a number > 0 and ≤ 60."],
    [['explain', '--run', 'r', '--out', 'o', '--seed', 'abc'], "pocovid: option '--seed <n>' argument 'abc' is invalid. Expected a whole number."],
    [['explain', '--run', 'r', '--out', 'o', '--method', 'gradcam,nope'], "pocovid: option '--method <list>' argument 'gradcam,nope' is invalid. \"nope\": Expected one of gradcam, cam, saliency, occlusion, all."],
    [['data', 'build', '--source', 's', '--out', 'o', '--folds', '1'], "pocovid: option '--folds <k>' argument '1' is invalid. Expected a whole number ≥ 2."],
    [['export', '--run', 'r', '--out', 'o', '--opset', '9'], "pocovid: option '--opset <n>' argument '9' is invalid. Expected a whole number from 11 to 21."],
    [['bench', '--runtimes', 'auto'], "pocovid: option '--runtimes <list>' argument 'auto' is invalid. \"auto\": Expected one of ort, tfjs."],
    [['predict', '--model', 'm'], 'pocovid: predict needs files or folders (or --exam-map <csv>)'],
    [['cv', '--lr-decay', 'fast', '--data', 'd', '--model', 'm', '--out', 'o'], "pocovid: option '--lr-decay <kind>' argument 'fast' is invalid. Allowed choices are original, none."],
    // update's overrides of the run's training options follow the training schema, as train's do.
    [['update', '--run', 'r', '--data', 'd', '--out', 'o', '--batch-size', '0'], "pocovid: option '--batch-size <n>' argument '0' is invalid. Expected a whole number ≥ 1."],
    [['update', '--run', 'r', '--data', 'd', '--out', 'o', '--lr', '1e'], "pocovid: option '--lr <rate>' argument '1e' is invalid. Expected a number > 0."],
    [['update', '--run', 'r', '--data', 'd', '--out', 'o', '--validation-fraction', '1'], "pocovid: option '--validation-fraction <f>' argument '1' is invalid. Expected a number > 0 and < 1."],
    [['update', '--run', 'r', '--data', 'd', '--out', 'o', '--fold', '0,x'], "pocovid: option '--fold <list>' argument '0,x' is invalid. \"x\": Expected a whole number ≥ 0."],
    [['update', '--run', 'r', '--data', 'd', '--out', 'o', '--augment', 'yes'], "pocovid: option '--augment <on|off>' argument 'yes' is invalid. Expected on or off."],
  ];
  for (const [args, line] of others) {
    it(`${args.join(' ')}`, async () => {
      const before = readdirSync(work).length;
      const result = await run(args);
      expect(result.err).toBe(line);
      expect(result.code).toBe(2);
      expect(readdirSync(work).length).toBe(before);
    });
  }

  it('shows schema defaults in help, --augment as on|off with each model\'s default recipe', async () => {
    const result = await run(['cv', '--help']);
    expect(result.code).toBe(0);
    // --augment is a recipe option: its default depends on the model (src/train/config.ts MODEL_RECIPES).
    expect(result.out).toMatch(/--augment <on\|off>[^]*\(default: mobilenet_v1: off; other\s+models: on\)/);
    expect(result.out).toMatch(/--epochs <n> +epochs \(default: 40\)/);
    expect(result.out).not.toMatch(/default: true/);
  });
});
