/**
 * Install as a vendor would: `npm pack` the built package, install the tarball into two fresh
 * Vite + React apps (one with npm and React 18, one with pnpm and React 19, from the npm registry),
 * type-check each (`tsc`, with that React's types) and build it with `vite build`, serve it, and in
 * Chromium, against the real host: create a webhook destination through the UI and see it listed,
 * send it a test event and see the attempt in the delivery log, watch a published event fail
 * against a broken receiver and replay it from its detail view; no page errors and no console
 * errors or warnings. The apps live in a temporary
 * directory; npm's cache and pnpm's store make a second run quick. Run after `npm run build`
 * (scripts/test-embed does). Screenshots: test-artifacts/embed/install-*.png.
 */

import { execFile } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ARTIFACTS_DIR, CHROMIUM, PACKAGE_DIR, onStop, startHost, startReceiver, stopAll, type Host, type Receiver } from '../browser/harness.js';

/** Pinned: the apps are fresh, but what they install is not left to chance. */
const PNPM = 'pnpm@12.26.0';
const VITE = '8.3.8';
const PLUGIN_REACT = '6.3.1';

interface App {
  name: string;
  manager: 'npm' | 'pnpm';
  react: string;
  dir: string;
  url: string;
}

const TYPESCRIPT = '6.0.3';

const APPS: (Omit<App, 'dir' | 'url'> & { types: { react: string; 'react-dom': string } })[] = [
  { name: 'npm-react18', manager: 'npm', react: '18.3.1', types: { react: '18.3.32', 'react-dom': '18.3.7' } },
  { name: 'pnpm-react19', manager: 'pnpm', react: '19.3.1', types: { react: '19.3.3', 'react-dom': '19.3.0' } },
];

/** The app's TypeScript settings, as Vite's React template has them: the package's types must hold. */
const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    module: 'ESNext',
    moduleResolution: 'bundler',
    jsx: 'react-jsx',
    strict: true,
    noEmit: true,
    isolatedModules: true,
    verbatimModuleSyntax: true,
    skipLibCheck: false,
  },
  include: ['main.tsx'],
};

const WAIT = 15_000;
const TEMPLATE = fileURLToPath(new URL('./app/', import.meta.url));
const run = promisify(execFile);

let work = '';
let host: Host;
let receiver: Receiver;
let browser: Browser;
const apps: App[] = [];

/** The parent `npx vitest` leaves npm settings in the environment that would point at embed-react. */
function childEnv(): NodeJS.ProcessEnv {
  const inherited = /^npm_(package|lifecycle)_|^npm_config_(prefix|local_prefix|global)$|^npm_(command|execpath)$|^INIT_CWD$/;
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !inherited.test(key)));
}

async function sh(cwd: string, command: string, args: string[]): Promise<void> {
  try {
    await run(command, args, { cwd, env: childEnv(), maxBuffer: 32 * 1024 * 1024, timeout: 240_000 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`, { cause: error });
  }
}

/** Writes the app (package.json by hand, no `npm create`), installs and builds it. */
async function prepare(app: (typeof APPS)[number], tarball: string): Promise<string> {
  const dir = join(work, app.name);
  mkdirSync(dir);
  const pkg = {
    name: `pushrail-install-${app.name}`,
    private: true,
    type: 'module',
    scripts: { build: 'tsc -p tsconfig.json && vite build' },
    dependencies: {
      '@pushrail/embed-react': `file:${tarball}`,
      react: app.react,
      'react-dom': app.react,
    },
    devDependencies: {
      vite: VITE,
      '@vitejs/plugin-react': PLUGIN_REACT,
      typescript: TYPESCRIPT,
      '@types/react': app.types.react,
      '@types/react-dom': app.types['react-dom'],
    },
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  writeFileSync(join(dir, 'tsconfig.json'), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
  writeFileSync(
    join(dir, 'vite.config.js'),
    "import react from '@vitejs/plugin-react';\nimport { defineConfig } from 'vite';\n\nexport default defineConfig({ plugins: [react()] });\n",
  );
  copyFileSync(join(TEMPLATE, 'index.html'), join(dir, 'index.html'));
  copyFileSync(join(TEMPLATE, 'main.tsx'), join(dir, 'main.tsx'));
  if (app.manager === 'npm') {
    await sh(dir, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error']);
    await sh(dir, 'npm', ['run', '--silent', 'build']);
  } else {
    // CI=true makes pnpm insist on a lockfile, which a fresh app does not have.
    await sh(dir, 'npx', ['--yes', PNPM, 'install', '--prefer-offline', '--no-frozen-lockfile', '--reporter=silent']);
    await sh(dir, 'npx', ['--yes', PNPM, 'run', '--silent', 'build']);
  }
  return dir;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Serves the app's `dist/` and, as its backend, mints session tokens for one customer. */
async function serve(dir: string, customer: string): Promise<string> {
  const dist = join(dir, 'dist');
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://app').pathname;
    if (path === '/token') {
      fetch(`${host.url}/v1/sessions`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${host.apiKey}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ external_id: customer }),
      })
        .then(async (answer) => {
          const { token } = (await answer.json()) as { token: string };
          res.writeHead(answer.status === 201 ? 200 : 502, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ token }));
        })
        .catch((error: unknown) => {
          res.writeHead(502);
          res.end(String(error));
        });
      return;
    }
    let file = normalize(join(dist, decodeURIComponent(path)));
    if (!file.startsWith(dist) || !existsSync(file) || statSync(file).isDirectory()) file = join(dist, 'index.html');
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onStop(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => { r(); });
      }),
  );
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${String(port)}/?pushrail=${encodeURIComponent(host.url)}`;
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'pushrail-embed-install-'));
  onStop(() => {
    rmSync(work, { recursive: true, force: true });
  });
  const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: PACKAGE_DIR, env: childEnv() });
  const tarball = join(work, stdout.trim().split('\n').at(-1) ?? '');
  expect(existsSync(tarball)).toBe(true);
  const [dirs] = await Promise.all([
    Promise.all(APPS.map((app) => prepare(app, tarball))),
    (async () => {
      host = await startHost();
      receiver = await startReceiver();
    })(),
  ]);
  for (const [i, app] of APPS.entries()) {
    const dir = dirs[i] ?? '';
    apps.push({ ...app, dir, url: await serve(dir, `install-${app.name}`) });
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  onStop(() => browser.close());
}, 300_000);

afterAll(async () => {
  await stopAll();
});

describe('the packed package, installed into fresh Vite + React apps', () => {
  for (const { name, manager, react } of APPS) {
    it(`${manager} with React ${react}: builds; creates, tests, fails and replays in Chromium`, async () => {
      const app = apps.find((a) => a.name === name);
      if (!app) throw new Error(`${name} was not prepared`);
      // What the package manager resolved: the tarball, and the React the app asked for.
      const installed = join(app.dir, 'node_modules', '@pushrail', 'embed-react', 'dist', 'index.js');
      expect(existsSync(installed)).toBe(true);

      const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT);
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') errors.push(`console.${message.type()}: ${message.text()}`);
      });
      try {
        await page.goto(app.url);
        await page.getByRole('tab', { name: 'Destinations' }).waitFor();
        await page.getByText('No destinations yet').waitFor();
        expect(await page.evaluate(() => document.documentElement.dataset.reactVersion)).toBe(react);

        const destination = `Orders (${name})`;
        await page.getByRole('button', { name: 'Add destination' }).first().click();
        await page.getByRole('radio', { name: /^Webhook/ }).check();
        await page.getByLabel('Name', { exact: true }).fill(destination);
        await page.getByLabel('Endpoint URL').fill(receiver.url);
        await page.getByRole('button', { name: 'Create destination' }).click();
        await page.getByText(`“${destination}” created.`).waitFor();
        const row = page.locator(`tr[data-destination="${destination}"]`);
        await row.waitFor();
        await expect(row.textContent()).resolves.toContain(receiver.url);

        const received = receiver.requests.length;
        await page.getByRole('button', { name: `Send test event to ${destination}` }).click();
        const dialog = page.getByRole('dialog', { name: 'Test event sent' });
        await dialog.getByText('Succeeded').waitFor();
        expect(receiver.requests.length).toBe(received + 1);
        await dialog.getByRole('button', { name: 'View in delivery log' }).click();
        await page.getByRole('heading', { name: /pushrail\.test/ }).waitFor();
        const attempt = page.locator('tr[data-attempt="1"]');
        await attempt.waitFor();
        await expect(attempt.textContent()).resolves.toMatch(/Succeeded.*200/s);

        // A failing receiver: the event fails its three attempts, then a replay from the detail
        // view (a confirmation dialog) delivers it once the receiver is back.
        receiver.status = 500;
        await page.getByRole('button', { name: 'Delivery log' }).first().click();
        const published = await fetch(`${host.url}/v1/events`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${host.apiKey}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ external_id: `install-${name}`, type: 'order.created', payload: { order_id: `ord_${name}` } }),
        });
        expect(published.status).toBeLessThan(300);
        await page.locator('tr[data-status="failed"]').waitFor({ timeout: 20_000 });
        await page.getByRole('button', { name: 'order.created, failed: view attempts' }).click();
        await page.locator('tr[data-attempt="3"]').waitFor();
        receiver.status = 200;
        await page.getByRole('button', { name: 'Replay', exact: true }).click();
        const confirm = page.getByRole('dialog', { name: 'Replay this delivery?' });
        await confirm.getByRole('button', { name: 'Replay delivery' }).click();
        await page.getByText('1 delivery replayed.').waitFor();
        await expect(page.locator('tr[data-attempt="4"]').textContent()).resolves.toMatch(/Succeeded.*200/s);
        await page.screenshot({ path: join(ARTIFACTS_DIR, `install-${name}.png`), fullPage: true });
        expect(errors).toEqual([]);
      } finally {
        receiver.status = 200;
        await context.close();
      }
    });
  }
});
