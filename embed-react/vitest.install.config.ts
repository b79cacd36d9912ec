import { defineConfig } from 'vitest/config';

/**
 * The install test: the packed package in fresh Vite + React apps (npm with React 18, pnpm with
 * React 19), built and driven in Chromium against the real host. Needs `npm run build` first.
 */
export default defineConfig({
  test: {
    include: ['test/install/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 300_000,
    bail: 1,
  },
});
