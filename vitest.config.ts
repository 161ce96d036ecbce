import { defineConfig } from 'vitest/config';

// Tests run in forked processes: the wasm backend and its worker threads are per process,
// and TF.js keeps global state (registered kernels, the active backend).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
