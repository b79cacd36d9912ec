import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * `dist/element.js`: `<pushrail-embed>` for pages without React or a bundler. One minified ESM
 * file carrying React, React DOM and react-query (production builds); runs after the library build.
 */
export default defineConfig({
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    sourcemap: true,
    minify: true,
    cssMinify: true,
    target: 'es2022',
    lib: {
      entry: `${here}src/element.ts`,
      formats: ['es'],
      fileName: () => 'element.js',
    },
    // Lib mode keeps whitespace in ES output; this file is for pages, not bundlers: minify it all.
    rolldownOptions: {
      output: { minify: true },
      // react-query's modules say "use client", which means nothing in a page's bundle.
      onLog(level, log, handler) {
        if (log.code === 'MODULE_LEVEL_DIRECTIVE') return;
        handler(level, log);
      },
    },
  },
});
