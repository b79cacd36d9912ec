/**
 * `<pushrail-embed>` on a plain HTML page (no React on the page, no bundler: the built
 * dist/element.js loaded with a module script), against the real host: it lists destinations,
 * creates a webhook, keeps its styles in its shadow root, and unmounts when removed.
 */

import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { expectAccessible } from './a11y.js';
import { ARTIFACTS_DIR, CHROMIUM, onStop, PACKAGE_DIR, startHost, startReceiver, stopAll, type Host, type Receiver } from './harness.js';

const WAIT = 15_000;
const CUSTOMER = 'element-customer';
const SHADOW = ['pushrail-embed', '.pr-embed'];

let host: Host;
let receiver: Receiver;
let pageUrl: string;
let browser: Browser;
let page: Page;
let minted = 0;
const pageErrors: string[] = [];

function html(apiBase: string): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Plain HTML dashboard</title>
    <style>
      /* The page's own styles, which must not reach into the embed. */
      button { background: rgb(255, 0, 0); font-family: serif; }
    </style>
  </head>
  <body>
    <main>
      <h1>Plain HTML dashboard</h1>
      <pushrail-embed api-base="${apiBase}"></pushrail-embed>
    </main>
    <script>
      // Set before the element is defined (module scripts run after this one): the element picks it up.
      const embed = document.querySelector('pushrail-embed');
      embed.fetchToken = async () => {
        const response = await fetch('/api/token');
        if (!response.ok) throw new Error('Not allowed');
        return (await response.json()).token;
      };
      embed.theme = { colors: { primary: '#4338ca' }, radius: 6 };
      window.signedOut = [];
      embed.addEventListener('pushrail-signed-out', (event) => window.signedOut.push(event.detail));
    </script>
    <script type="module" src="/pushrail-embed.js"></script>
  </body>
</html>
`;
}

async function startPage(target: Host): Promise<string> {
  const script = readFileSync(join(PACKAGE_DIR, 'dist', 'element.js'));
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(html(target.url));
      } else if (req.url === '/pushrail-embed.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
        res.end(script);
      } else if (req.url === '/api/token') {
        // What a vendor's backend does: mint a session for its signed-in customer with the tenant key.
        const answer = await fetch(`${target.url}/v1/sessions`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${target.apiKey}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ external_id: CUSTOMER }),
        });
        const body = (await answer.json()) as { token?: string };
        minted += 1;
        res.writeHead(answer.status === 201 ? 200 : 502, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      } else if (req.url === '/favicon.ico') {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(404);
        res.end();
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onStop(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          r();
        });
      }),
  );
  return `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/`;
}

beforeAll(async () => {
  host = await startHost();
  receiver = await startReceiver();
  pageUrl = await startPage(host);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-sync'],
  });
  onStop(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
});

afterAll(async () => {
  await stopAll();
});

describe('<pushrail-embed> on a plain HTML page', () => {
  it('shows the destinations list, from one script and no React on the page', async () => {
    await page.goto(pageUrl);
    await page.getByText('No destinations yet').waitFor();
    const found = await page.evaluate(() => {
      const element = document.querySelector('pushrail-embed');
      return {
        defined: customElements.get('pushrail-embed') !== undefined,
        scripts: [...document.scripts].map((s) => s.src).filter(Boolean),
        react: 'React' in window,
        shadow: !!element?.shadowRoot?.querySelector('.pr-embed[data-pushrail-state="ready"]'),
        headStyles: !!document.getElementById('pushrail-embed-styles'),
      };
    });
    expect(found).toEqual({ defined: true, scripts: [`${pageUrl}pushrail-embed.js`], react: false, shadow: true, headStyles: false });
    expect(minted).toBe(1);
    await expectAccessible(page, 'element-destinations-empty', SHADOW);
  });

  it('carries its stylesheet and theme into the shadow root, and the page`s styles stay out', async () => {
    const styles = await page.evaluate(() => {
      const root = document.querySelector('pushrail-embed')?.shadowRoot;
      const button = root?.querySelector<HTMLElement>('.pr-button-primary');
      const embed = root?.querySelector<HTMLElement>('.pr-embed');
      const style = button ? getComputedStyle(button) : null;
      return {
        primary: embed ? getComputedStyle(embed).getPropertyValue('--pr-color-primary').trim() : '',
        background: style?.backgroundColor ?? '',
        font: style?.fontFamily ?? '',
        radius: style?.borderTopLeftRadius ?? '',
      };
    });
    expect(styles.primary).toBe('#4338ca');
    expect(styles.background).toBe('rgb(67, 56, 202)');
    expect(styles.font).not.toBe('serif');
    expect(styles.radius).toBe('6px');
  });

  it('creates a webhook destination', async () => {
    await page.getByRole('button', { name: 'Add destination' }).first().click();
    await page.getByRole('radio', { name: /^Webhook/ }).check();
    await page.getByLabel('Name', { exact: true }).fill('Plain page hook');
    await page.getByLabel('Endpoint URL').fill(receiver.url);
    await page.getByLabel('Event types').fill('order.*');
    await page.getByRole('button', { name: 'Create destination' }).click();
    await page.getByText('“Plain page hook” created.').waitFor();
    const row = page.locator('tr[data-destination="Plain page hook"]');
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain(receiver.url);
    // Leaving the form returns focus to "Add destination", found in the shadow root.
    await expect
      .poll(() => page.evaluate(() => document.querySelector('pushrail-embed')?.shadowRoot?.activeElement?.textContent.trim()))
      .toBe('Add destination');
    await page.screenshot({ path: join(ARTIFACTS_DIR, '20-element-destinations.png'), fullPage: true });
    await expectAccessible(page, 'element-destinations', SHADOW);

    // The host has it, for this customer.
    const token = await page.evaluate(async () => ((await (await fetch('/api/token')).json()) as { token: string }).token);
    const list = (await (
      await fetch(`${host.url}/embed/v1/destinations`, { headers: { Authorization: `Bearer ${token}` } })
    ).json()) as { items: { name: string; type: string; config: { url?: string } }[] };
    expect(list.items).toMatchObject([{ name: 'Plain page hook', type: 'webhook', config: { url: receiver.url } }]);
  });

  it('opens its modal dialogs inside the shadow root: a test event, then its delivery', async () => {
    await page.getByRole('button', { name: 'Send test event to Plain page hook' }).click();
    const dialog = page.getByRole('dialog', { name: 'Test event sent' });
    await dialog.waitFor();
    await dialog.getByText('Succeeded').waitFor();
    expect(receiver.requests.at(-1)?.path).toBe('/hooks/acme');
    expect(await page.evaluate(() => !!document.querySelector('pushrail-embed')?.shadowRoot?.querySelector('dialog:modal'))).toBe(true);
    await expectAccessible(page, 'element-test-event-dialog', SHADOW);
    await dialog.getByRole('button', { name: 'View in delivery log' }).click();
    await page.getByRole('heading', { name: /pushrail\.test/ }).waitFor();
    await page.locator('[role="tab"][aria-selected="true"]', { hasText: 'Delivery log' }).waitFor();
  });

  it('unmounts when removed from the page', async () => {
    const left = await page.evaluate(async () => {
      const element = document.querySelector('pushrail-embed');
      if (!element?.shadowRoot) return 'no element';
      const root = element.shadowRoot;
      element.remove();
      await new Promise((r) => setTimeout(r, 50));
      return root.querySelector('.pr-embed') ? 'still rendered' : 'unmounted';
    });
    expect(left).toBe('unmounted');
  });

  it('raised no page errors and never signed out', async () => {
    expect(pageErrors).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { signedOut: unknown[] }).signedOut)).toEqual([]);
  });
});
