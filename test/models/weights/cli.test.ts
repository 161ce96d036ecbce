import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { register, resolveWeightsOption } from '../../../src/cli/weights.js';
import { BadInputError, PocovidError } from '../../../src/errors.js';
import { getModelSpec, registerModel } from '../../../src/models/registry.js';
import '../../../src/models/index.js';
import type { WeightSource } from '../../../src/models/types.js';
import { writeSafetensors } from '../../../src/models/weights/safetensors.js';
import { tensorOf, writeKerasH5 } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'pocovid-wcli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

async function runCli(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  register(program);
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void lines.push(parts.join(' ')));
  await program.parseAsync(['node', 'pocovid', ...args]);
  return lines.join('\n');
}

describe('pocovid weights', () => {
  it('info lists tensors, dtypes, shapes, metadata and the inferred format (safetensors, torchvision names)', async () => {
    const file = join(dir, 'tv.safetensors');
    await writeSafetensors(file, [['conv1.weight', tensorOf([4, 3, 3, 3], 1)], ['bn1.running_mean', tensorOf([4], 2)]], { licence: 'BSD' });
    const out = await runCli('weights', 'info', file);
    expect(out).toContain(`${file}: torchvision-safetensors, 2 tensors, 112 parameters`);
    expect(out).toContain('  licence: BSD');
    expect(out).toMatch(/conv1\.weight\s+F32\s+\[4, 3, 3, 3\]/);
    const json = JSON.parse(await runCli('weights', 'info', file, '--json'));
    expect(json.tensors[1]).toEqual({ name: 'bn1.running_mean', dtype: 'F32', shape: [4] });
  });

  it('info lists a Keras HDF5 file under our names', async () => {
    const file = join(dir, 'k.h5');
    await writeKerasH5(file, [{ name: 'block1_conv1', weights: [['block1_conv1_W_1:0', tensorOf([3, 3, 3, 2], 1)], ['block1_conv1_b_1:0', tensorOf([2], 2)]] }]);
    const out = await runCli('weights', 'info', file);
    expect(out).toContain('keras-h5, 2 tensors, 56 parameters');
    expect(out).toMatch(/block1_conv1\/kernel\s+F32\s+\[3, 3, 3, 2\]/);
  });

  it('fetch answers from the cache folder, and explains where to put a file that cannot be downloaded', async () => {
    const cache = join(dir, 'cache');
    const fileName = 'mobilenet_v1_1.0_224_imagenet_to_pw12.safetensors';
    await expect(runCli('weights', 'fetch', 'mobilenet_v1', '--cache', cache)).rejects.toThrow(`copy it to ${join(cache, fileName)}`);
    // A file under that name whose checksum is not the published one is not accepted.
    await writeSafetensors(join(cache, fileName), [['x', tensorOf([1], 1)]]);
    await expect(runCli('weights', 'fetch', 'mobilenet_v1', '--cache', cache)).rejects.toThrow(
      /has sha256 [0-9a-f]{64}, not 03d5a1bea45300da32904abeac533da0b888e3530ec8e67294ec84c07c0b1bd3/,
    );
    expect(await runCli('weights', 'fetch', 'grayscale_cnn', '--cache', cache)).toContain('no pretrained weights');
    await expect(runCli('weights', 'fetch', 'vgg16', '--source', 'nope', '--cache', cache)).rejects.toThrow(/unknown weight source "nope"; valid: vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5/);
  });

  it('fetch downloads into the cache with the sha256 checked, then answers from the cache without the network, and fetches a damaged copy again', async () => {
    // A weight file made here, served on 127.0.0.1 and named by a model registered for this test:
    // the same path as a real model's fetch, without ../shared or the internet.
    const served = join(dir, 'served.safetensors');
    await writeSafetensors(served, [['conv/kernel', tensorOf([3, 3, 1, 2], 4)], ['conv/bias', tensorOf([2], 5)]]);
    const bytes = readFileSync(served);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    let requests = 0;
    const server = createServer((req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) }).end(bytes);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const fileName = 'weights_cli_test.safetensors';
      const source: WeightSource = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/w.safetensors`, sha256, fileName, licence: 'test', format: 'keras-safetensors' };
      const base = getModelSpec('grayscale_cnn');
      registerModel({ ...base, name: 'weights_cli_test', cfg: { ...base.cfg, id: 'weights_cli_test', sources: [source] } });
      const cache = join(dir, 'cache-served');
      const cached = join(cache, fileName);
      const answer = `${cached}\nsha256 ${sha256} (verified)`;
      expect(await runCli('weights', 'fetch', 'weights_cli_test', '--cache', cache)).toBe(answer);
      expect(requests).toBe(1);
      expect(readFileSync(cached).equals(bytes)).toBe(true);
      expect(readdirSync(cache)).toEqual([fileName]);
      // A cache hit: the same answer, no request.
      expect(await runCli('weights', 'fetch', 'weights_cli_test', '--cache', cache)).toBe(answer);
      expect(requests).toBe(1);
      // A damaged cached copy fails its sha256 and is downloaded again.
      writeFileSync(cached, 'damaged');
      expect(await runCli('weights', 'fetch', 'weights_cli_test', '--cache', cache)).toBe(answer);
      expect(requests).toBe(2);
      expect(readFileSync(cached).equals(bytes)).toBe(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('resolveWeightsOption passes undefined through and checks a given file', async () => {
    expect(await resolveWeightsOption(undefined)).toBeUndefined();
    const good = join(dir, 'good.safetensors');
    await writeSafetensors(good, [['a/kernel', tensorOf([2], 1)]]);
    expect(await resolveWeightsOption(good)).toBe(good);
    await expect(resolveWeightsOption(join(dir, 'missing.h5'))).rejects.toThrow(BadInputError);
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, 'hello world, not weights');
    await expect(resolveWeightsOption(junk)).rejects.toThrow(`${junk}: not a weight file: neither HDF5 (Keras .h5) nor safetensors`);
    await expect(resolveWeightsOption(dir)).rejects.toThrow(PocovidError);
  });
});
