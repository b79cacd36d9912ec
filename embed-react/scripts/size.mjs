// Reports what the built package costs an app: its JS minified and gzipped, alone and with
// @tanstack/react-query (its one dependency). React is the app's and not counted. Bundled with
// rolldown (Vite's bundler) in application mode, so minification is complete. And the custom element's
// single file, which carries React.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { build } from 'rolldown';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const entry = join(root, 'dist', 'index.js');
const react = [/^react($|\/)/, /^react-dom($|\/)/];

async function measure(external) {
  const { output } = await build({
    input: entry,
    external,
    logLevel: 'silent',
    write: false,
    output: { format: 'esm', minify: true },
  });
  const code = Buffer.from(output[0].code);
  return { min: code.length, gzip: gzipSync(code, { level: 9 }).length };
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const own = await measure([...react, /^@tanstack\//]);
const total = await measure(react);
const css = readFileSync(join(root, 'dist', 'styles.css'));
console.log(`@pushrail/embed-react dist/index.js (CSS included), minified ${kb(own.min)}, gzipped ${kb(own.gzip)}`);
console.log(`  + @tanstack/react-query: minified ${kb(total.min)}, gzipped ${kb(total.gzip)} (react, react-dom not counted)`);
console.log(`  dist/styles.css alone: ${kb(css.length)}, gzipped ${kb(gzipSync(css, { level: 9 }).length)}`);

// <pushrail-embed>: one file for pages without a bundler, React, React DOM and react-query inside.
const element = readFileSync(join(root, 'dist', 'element.js'));
console.log(
  `@pushrail/embed-react/element dist/element.js (React included), minified ${kb(element.length)}, gzipped ${kb(gzipSync(element, { level: 9 }).length)}`,
);
