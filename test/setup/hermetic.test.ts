// The suite's set-up gives this file a cache folder of its own (test/setup/hermetic.ts): the
// weight and ONNX caches the code finds by default lie in it, never under the user's home.
import { existsSync, readdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultCacheDir } from '../../src/models/weights/fetch.js';
import { defaultOnnxCacheDir } from '../../src/onnx/cache.js';

describe('every test file has its own cache folder', () => {
  it('POCOVID_CACHE and XDG_CACHE_HOME point into a fresh temporary folder, and the default caches follow them', () => {
    const cache = process.env['POCOVID_CACHE'];
    expect(cache).toBeDefined();
    const root = dirname(cache!);
    expect(root.startsWith(join(tmpdir(), 'pocovid-test-cache-'))).toBe(true);
    expect(process.env['XDG_CACHE_HOME']).toBe(join(root, 'xdg'));
    // Made for this file: nothing in it yet.
    expect(readdirSync(root)).toEqual([]);
    expect(defaultCacheDir()).toBe(cache);
    expect(defaultOnnxCacheDir().startsWith(cache!)).toBe(true);
    expect(defaultCacheDir().startsWith(join(homedir(), '.cache'))).toBe(false);
    expect(existsSync(root)).toBe(true);
  });
});
