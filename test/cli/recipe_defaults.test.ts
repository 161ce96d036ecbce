// Each model's default recipe (src/train/config.ts MODEL_RECIPES) reaches the trainer through the
// CLI's option parsing: a recipe option left unset takes the model's recipe, one given on the
// command line wins, and a model without a recipe gets the schema's defaults (POCOVID-Net's).
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addTrainOptions, toConfigInput, type ParsedTrainOptions } from '../../src/cli/train_options.js';
import { MODEL_RECIPES, RECIPE_FIELDS, resolveTrainConfig } from '../../src/train/config.js';

function configFor(args: string[]) {
  const command = addTrainOptions(new Command('cv')).exitOverride();
  command.parse(['--data', 'd', '--out', 'o', ...args], { from: 'user' });
  return resolveTrainConfig({ ...toConfigInput(command.opts<ParsedTrainOptions>()), fold: 0 });
}

describe('default recipes through the CLI', () => {
  it('fills every recipe option of mobilenet_v1 left unset from its recipe', () => {
    const config = configFor(['--model', 'mobilenet_v1']);
    const recipe = MODEL_RECIPES['mobilenet_v1']!;
    for (const field of RECIPE_FIELDS) if (recipe[field] !== undefined) expect(config[field], field).toEqual(recipe[field]);
    // The measured best honest recipe (docs/results.md): a logistic head on frozen grey features
    // inside the sector, the input smoothed and the first stride-2 conv anti-aliased.
    expect(config).toMatchObject({ head: 'logistic', trainableLayers: 0, colour: 'grey', sector: 'mask', augment: false, inputBlur: 1, antiAlias: 1 });
  });

  it('keeps what the command line sets, option by option', () => {
    const config = configFor(['--model', 'mobilenet_v1', '--head', 'pocovid', '--trainable-layers', '2', '--augment', 'on', '--colour', 'rgb', '--input-blur', '0', '--anti-alias', '0']);
    expect(config).toMatchObject({ head: 'pocovid', trainableLayers: 2, augment: true, colour: 'rgb', inputBlur: 0, antiAlias: 0 });
    // The options it did not set still come from the recipe.
    expect(config.sector).toBe(MODEL_RECIPES['mobilenet_v1']!.sector);
  });

  it('gives a model without a recipe the schema defaults', () => {
    expect(MODEL_RECIPES['vgg16']).toBeUndefined();
    const config = configFor(['--model', 'vgg16']);
    expect(config).toMatchObject({ colour: 'rgb', sector: 'off', classWeights: 'none', augment: true, inputBlur: 0, antiAlias: 0 });
    // The model's own head and trainable layers (POCOVID-Net's head, the model's default block).
    expect(config.head).toBeUndefined();
    expect(config.trainableLayers).toBeUndefined();
  });
});
