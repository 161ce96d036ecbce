import { defineConfig } from 'vitest/config';

// Tests run in forked processes: the wasm backend and its worker threads are per process,
// and TF.js keeps global state (registered kernels, the active backend). Every test file gets its
// own cache folder (test/setup/hermetic.ts).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/hermetic.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
