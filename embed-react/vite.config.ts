import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Library build: one ESM file; React and react-query stay imports (peer / dependency of the app). */
export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    minify: false,
    cssMinify: true,
    target: 'es2022',
    lib: {
      entry: `${here}src/index.ts`,
      formats: ['es'],
      fileName: () => 'index.js',
    },
    rolldownOptions: {
      external: [/^react($|\/)/, /^react-dom($|\/)/, /^@tanstack\/react-query($|\/)/],
      // Client components for React Server Components frameworks (Next.js app router).
      output: { banner: '"use client";' },
    },
  },
  plugins: [
    {
      name: 'pushrail-copy-styles',
      closeBundle() {
        // The same stylesheet the component injects, for apps whose CSP forbids inline styles.
        copyFileSync(`${here}src/styles.css`, `${here}dist/styles.css`);
      },
    },
  ],
});
