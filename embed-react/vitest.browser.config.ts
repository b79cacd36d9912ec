import { defineConfig } from 'vitest/config';

/** End-to-end: the real host, the demo backend and Chromium, driven from Node. */
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 90_000,
    bail: 1,
  },
});
