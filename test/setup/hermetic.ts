// Runs before every test file (vitest setupFiles): each file gets a cache folder of its own,
// empty at its start and removed after its last test. $POCOVID_CACHE and $XDG_CACHE_HOME both
// point into it, so no test reads or fills the user's ~/.cache/pocovid: weights fetched there
// earlier would change a run's starting weights (src/train/initial_weights.ts), and ONNX files
// exported there would be shared between test files and with the user's own runs. A test that
// needs another cache sets POCOVID_CACHE itself, as before.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'pocovid-test-cache-'));
process.env['POCOVID_CACHE'] = join(root, 'pocovid');
process.env['XDG_CACHE_HOME'] = join(root, 'xdg');

afterAll(() => rmSync(root, { recursive: true, force: true }));
