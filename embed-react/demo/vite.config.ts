import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The demo dashboard, built against the package's built output (as an app would install it). */
export default defineConfig({
  root: here,
  base: '/',
  resolve: {
    alias: { '@pushrail/embed-react': fileURLToPath(new URL('../dist/index.js', import.meta.url)) },
  },
  build: {
    outDir: `${here}dist`,
    emptyOutDir: true,
    target: 'es2022',
    rolldownOptions: {
      onLog(level, log, handler) {
        // react-query's "use client" directives mean nothing in a client-only bundle.
        if (log.code === 'MODULE_LEVEL_DIRECTIVE') return;
        handler(level, log);
      },
    },
  },
});
