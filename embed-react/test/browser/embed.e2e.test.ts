/**
 * The whole flow in Chromium against the real host: a customer configures a webhook, tests it,
 * watches a failure arrive, replays it once the receiver is fixed; another customer sees none of
 * it; a revocation signs the first one out. On a host of its own, a destination the host disabled
 * after failing shows why, and enabling it delivers its paused backlog. Screenshots go to
 * test-artifacts/embed/.
 */

import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { checkedScreens, expectAccessible } from './a11y.js';
import {
  ARTIFACTS_DIR,
  AWS_ACCOUNT_ID,
  CHROMIUM,
  onStop,
  poll,
  startDemo,
  startHost,
  startReceiver,
  stopAll,
  type Host,
  type Receiver,
} from './harness.js';

const WAIT = 15_000;

let host: Host;
let receiver: Receiver;
let demoUrl: string;
let browser: Browser;
let pageA: Page | undefined;
/** Customer C: the keyboard-only and dark-theme checks. */
let pageC: Page | undefined;
let contextC: BrowserContext | undefined;

function customerA(): Page {
  if (!pageA) throw new Error('customer A has no page');
  return pageA;
}
let destinationId = '';
let signingSecret = '';
const deliveriesOfA: string[] = [];
let externalIdOfA = '';
const pageErrors: string[] = [];

/** Saves a screenshot; the whole page, or only the viewport while a modal dialog is open. */
async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS_DIR, `${name}.png`), fullPage });
}

async function newCustomerPage(customer: string, url = demoUrl): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (error) => pageErrors.push(`${customer}: ${error.message}`));
  await page.goto(url);
  await signIn(page, customer);
  return { context, page };
}

async function signIn(page: Page, customer: string): Promise<void> {
  await page.getByLabel('Customer (external id)').fill(customer);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(`Signed in as ${customer}`).waitFor();
  await page.getByRole('tab', { name: 'Destinations' }).waitFor();
}

async function openTab(page: Page, name: string): Promise<void> {
  await page.getByRole('tab', { name }).click();
  await page.locator('[role="tab"][aria-selected="true"]', { hasText: name }).waitFor();
}

interface Focused {
  tag: string;
  type: string;
  role: string;
  /** aria-label, else the label's text, else the element's text. */
  name: string;
  id: string;
  checked: boolean;
  inEmbed: boolean;
  /** The aria-label of the form holding the focus, if any. */
  inForm: string | null;
}

/** What has the keyboard focus. */
async function focused(page: Page): Promise<Focused> {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLInputElement | null;
    const label = el?.labels?.[0]?.textContent;
    return {
      tag: el?.tagName.toLowerCase() ?? '',
      type: el?.getAttribute('type') ?? '',
      role: el?.getAttribute('role') ?? '',
      name: (el?.getAttribute('aria-label') ?? label ?? el?.textContent ?? '').trim(),
      id: el?.id ?? '',
      checked: el?.checked === true,
      inEmbed: !!el?.closest('.pr-embed'),
      inForm: el?.closest('form')?.getAttribute('aria-label') ?? null,
    };
  });
}

/** Presses `key` (Tab by default) until the focused element's name matches; fails after `max` presses. */
async function tabTo(page: Page, name: RegExp, key = 'Tab', max = 40): Promise<Focused> {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press(key);
    const f = await focused(page);
    if (name.test(f.name)) return f;
  }
  throw new Error(`${key} never reached ${String(name)}; focus is on ${JSON.stringify(await focused(page))}`);
}

/** What `GET /embed/v1/aws-role` answers for the page's signed-in customer. */
async function awsRoleOf(page: Page): Promise<{ account_id: string; external_id: string; principal: string }> {
  const response = await fetch(`${host.url}/embed/v1/aws-role`, { headers: { Authorization: `Bearer ${await tokenOf(page)}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as { account_id: string; external_id: string; principal: string };
}

/** Opens "Add a credential" with the kind "AWS IAM role" and answers the external id it shows. */
async function openAwsRoleForm(page: Page): Promise<string> {
  await openTab(page, 'Credentials');
  await page.getByRole('button', { name: 'Add credential' }).first().click();
  await page.getByLabel('Kind').selectOption({ label: 'AWS IAM role' });
  const externalId = page.locator('.pr-copy-item').filter({ has: page.getByText('External ID', { exact: true }) }).locator('code');
  await externalId.waitFor();
  return (await externalId.textContent()) ?? '';
}

/** The token the demo backend mints for the page's signed-in customer. */
async function tokenOf(page: Page): Promise<string> {
  return page.evaluate(async () => {
    const response = await fetch('/api/token');
    return ((await response.json()) as { token: string }).token;
  });
}

async function publish(page: Page, type: string): Promise<void> {
  const log = page.getByTestId('operator-log');
  const before = await log.locator('li').count();
  await page.locator('#operator-event-type').fill(type);
  await page.getByRole('button', { name: 'Publish sample event' }).click();
  await poll('the publish answer', async () => (await log.locator('li').count()) > before);
  const line = (await log.locator('li').first().textContent()) ?? '';
  expect(line).toMatch(/^Publish: evt_\w+ → 1 delivery$/);
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  host = await startHost();
  receiver = await startReceiver();
  demoUrl = await startDemo(host);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  onStop(() => browser.close());
  ({ page: pageA } = await newCustomerPage('acme-customer-a'));
});

afterEach(async ({ task }) => {
  if (task.result?.state === 'fail' && pageA && !pageA.isClosed()) {
    await shot(pageA, `failure-${task.name.replace(/\W+/g, '-').slice(0, 60)}`).catch(() => undefined);
  }
});

afterAll(async () => {
  await stopAll();
});

describe('embed in the demo dashboard, against the real host', () => {
  it('shows customer A an empty destinations screen', async () => {
    const page = customerA();
    await page.getByText('No destinations yet').waitFor();
    await expectAccessible(page, 'destinations-empty');
    // The check can fail: a nameless button, and pale text on a select whose chevron is a gradient
    // (which axe leaves for review, and the check measures itself).
    await page.locator('.pr-panel').evaluate((panel) => {
      const probe = document.createElement('div');
      probe.id = 'a11y-probe';
      probe.innerHTML =
        '<button type="button"><svg width="8" height="8" aria-hidden="true"></svg></button>' +
        '<label for="a11y-probe-select">Probe</label><select id="a11y-probe-select" class="pr-input pr-select" style="color: #cccccc"><option>Pale</option></select>';
      panel.append(probe);
    });
    const failure = await expectAccessible(page, 'probe').then(
      () => '',
      (error: unknown) => String(error),
    );
    expect(failure).toMatch(/\[critical\] button-name/);
    expect(failure).toMatch(/color-contrast.*\(needs review\)[\s\S]*#a11y-probe-select/);
    await page.locator('#a11y-probe').evaluate((probe) => {
      probe.remove();
    });
    // Keyboard: arrow keys move between tabs (roving tabindex) and select them.
    await page.getByRole('tab', { name: 'Destinations' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: 'Credentials' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.getByRole('tab', { name: 'Credentials' }).getAttribute('tabindex')).toBe('0');
    expect(await page.getByRole('tab', { name: 'Destinations' }).getAttribute('tabindex')).toBe('-1');
    await page.keyboard.press('ArrowLeft');
    expect(await page.getByRole('tab', { name: 'Destinations' }).getAttribute('aria-selected')).toBe('true');
  });

  it('creates a webhook destination from the type schema, with validation from the API', async () => {
    const page = customerA();
    await page.getByRole('button', { name: 'Add destination' }).first().click();
    // Other plugins may be loaded too: pick the webhook type.
    await page.getByRole('radio', { name: /^Webhook/ }).check();
    // Controls come from the webhook's config_schema: titles as labels, a URL input, a number input.
    const url = page.getByLabel('Endpoint URL');
    expect(await url.getAttribute('type')).toBe('url');
    expect(await page.getByLabel('Timeout (ms)').getAttribute('type')).toBe('number');

    // A value the client accepts but the plugin refuses: the API's details land on the field.
    await page.getByLabel('Name', { exact: true }).fill('Orders endpoint');
    await url.fill(receiver.url);
    await page.getByRole('button', { name: 'Add custom header' }).click();
    await page.getByLabel('Custom headers 1 name').fill('Authorization');
    await page.getByLabel('Custom headers 1 value').fill('secret-ish');
    await page.getByRole('button', { name: 'Create destination' }).click();
    await page.getByText('this header is set by Pushrail').waitFor();
    expect(await page.getByLabel('Custom headers 1 value').getAttribute('aria-invalid')).toBe('true');
    await expectAccessible(page, 'destination-form');

    await page.getByLabel('Custom headers 1 name').fill('X-Acme-Source');
    await page.getByLabel('Custom headers 1 value').fill('pushrail-demo');
    await page.getByLabel('Event types').fill('order.*, pushrail.test');
    await shot(page, '02-create-form');
    await page.getByRole('button', { name: 'Create destination' }).click();
    await page.getByText('“Orders endpoint” created.').waitFor();
    // The generated signing secret is shown once, in a notice that stays until dismissed.
    const notice = (await page.getByText('Its signing secret, shown only now').textContent()) ?? '';
    signingSecret = /whsec_[A-Za-z0-9+/]+=*/.exec(notice)?.[0] ?? '';
    expect(signingSecret).toMatch(/^whsec_/);
    const row = page.locator('tr[data-destination="Orders endpoint"]');
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain(receiver.url);
    await expect(row.textContent()).resolves.toContain('Enabled');
    await shot(page, '01-destinations');
    await expectAccessible(page, 'destinations');

    const token = await tokenOf(page);
    const list = (await (
      await fetch(`${host.url}/embed/v1/destinations`, { headers: { Authorization: `Bearer ${token}` } })
    ).json()) as { items: { id: string; config: Record<string, unknown>; credential_id: string | null }[] };
    expect(list.items).toHaveLength(1);
    const [created] = list.items;
    destinationId = created?.id ?? '';
    expect(created?.config).toEqual({ url: receiver.url, headers: { 'X-Acme-Source': 'pushrail-demo' } });
    expect(created?.credential_id).toMatch(/^cred_/); // the generated signing secret
  });

  it('edits, disables and re-enables the destination', async () => {
    const page = customerA();
    await page.getByRole('button', { name: 'Edit Orders endpoint' }).click();
    const timeout = page.getByLabel(/Timeout \(ms\)/);
    await timeout.fill('5000');
    expect(await page.getByLabel('Endpoint URL').inputValue()).toBe(receiver.url);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('“Orders endpoint” saved.').waitFor();
    const token = await tokenOf(page);
    const saved = (await (
      await fetch(`${host.url}/embed/v1/destinations/${destinationId}`, { headers: { Authorization: `Bearer ${token}` } })
    ).json()) as { config: Record<string, unknown>; event_types: string[] };
    expect(saved.config).toEqual({ url: receiver.url, headers: { 'X-Acme-Source': 'pushrail-demo' }, timeout_ms: 5000 });
    expect(saved.event_types).toEqual(['order.*', 'pushrail.test']);

    const row = page.locator('tr[data-destination="Orders endpoint"]');
    await page.getByRole('button', { name: 'Disable Orders endpoint' }).click();
    await row.getByText('Disabled').waitFor();
    expect(await page.getByRole('button', { name: 'Send test event to Orders endpoint' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Enable Orders endpoint' }).click();
    await row.getByText('Enabled').waitFor();
  });

  it('sends a test event and shows the attempt, also in the delivery log', async () => {
    const page = customerA();
    await page.getByRole('button', { name: 'Send test event to Orders endpoint' }).click();
    const dialog = page.getByRole('dialog', { name: 'Test event sent' });
    await dialog.waitFor();
    await dialog.getByText('Succeeded').waitFor();
    await expect(dialog.textContent()).resolves.toContain('200');
    await shot(page, '03-test-event', false);
    await expectAccessible(page, 'test-event-dialog');
    const request = receiver.requests.at(-1);
    expect(request?.headers['webhook-signature']).toMatch(/^v1,/);
    // The secret the customer was shown verifies the signature (Standard Webhooks scheme).
    const key = Buffer.from(signingSecret.slice('whsec_'.length), 'base64');
    const signed = `${String(request?.headers['webhook-id'])}.${String(request?.headers['webhook-timestamp'])}.${request?.body ?? ''}`;
    const expected = `v1,${createHmac('sha256', key).update(signed).digest('base64')}`;
    expect(String(request?.headers['webhook-signature']).split(' ')).toContain(expected);
    expect(request?.headers['x-acme-source']).toBe('pushrail-demo');

    await dialog.getByRole('button', { name: 'View in delivery log' }).click();
    await page.getByRole('heading', { name: /pushrail\.test/ }).waitFor();
    const attempt = page.locator('tr[data-attempt="1"]');
    await attempt.waitFor();
    await expect(attempt.textContent()).resolves.toMatch(/Succeeded.*200/s);
  });

  it('shows a failing receiver in the log, with every attempt', async () => {
    const page = customerA();
    receiver.status = 500;
    await openTab(page, 'Delivery log');
    await publish(page, 'order.created');
    await publish(page, 'order.updated');
    // Three attempts each (0s, 500ms, 500ms), then failed; the log refreshes itself.
    const failed = page.locator('tr[data-status="failed"]');
    await poll('two failed deliveries in the log', async () => (await failed.count()) === 2, 20_000);
    await shot(page, '04-delivery-log');
    await expectAccessible(page, 'deliveries');

    // Filters: only failures, only order.created.
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await page.getByRole('textbox', { name: 'Event type', exact: true }).first().fill('order.created');
    await poll('the filtered log', async () => (await page.locator('tbody tr[data-delivery]').count()) === 1);

    await page.getByRole('button', { name: 'order.created, failed: view attempts' }).click();
    await page.locator('tr[data-attempt="3"]').waitFor();
    const attempts = page.locator('tr[data-attempt]');
    expect(await attempts.count()).toBe(3);
    const text = (await attempts.first().textContent()) ?? '';
    expect(text).toContain('500');
    expect(text).toContain('receiver is down for maintenance');
    expect(text).toMatch(/Retryable error/);

    // What was sent: the payload the demo published, pretty-printed, the very one the receiver got.
    const payload = page.getByLabel('Payload', { exact: true });
    const shown = (await payload.textContent()) ?? '';
    expect(shown).toMatch(/^{\n {2}"order_id": "ord_/);
    const sent = JSON.parse(shown) as Record<string, unknown>;
    expect(sent).toMatchObject({ amount: 4200, currency: 'usd', customer: 'acme-customer-a' });
    const received = receiver.requests.find((r) => (JSON.parse(r.body) as { data?: { order_id?: unknown } }).data?.order_id === sent.order_id);
    expect((JSON.parse(received?.body ?? '{}') as { data: unknown }).data).toEqual(sent);
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: demoUrl });
    await page.getByRole('button', { name: 'Copy payload' }).click();
    await page.locator('.pr-payload').getByText('Copied', { exact: true }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(shown);
    await shot(page, '05-attempt-detail');
    await expectAccessible(page, 'delivery-detail');
  });

  it('replays the failed delivery from its detail view once the receiver is fixed', async () => {
    const page = customerA();
    receiver.status = 200;
    await page.getByRole('button', { name: 'Replay', exact: true }).click();
    const confirm = page.getByRole('dialog', { name: 'Replay this delivery?' });
    await confirm.waitFor();
    await shot(page, '06-replay-confirm', false);
    await expectAccessible(page, 'replay-delivery-dialog');
    await confirm.getByRole('button', { name: 'Replay delivery' }).click();
    await page.getByText('1 delivery replayed.').waitFor();
    await page.locator('tr[data-attempt="4"]').waitFor();
    await expect(page.locator('tr[data-attempt="4"]').textContent()).resolves.toMatch(/Succeeded.*200/s);
    await page.getByRole('heading').filter({ hasText: 'order.created' }).getByText('Succeeded').waitFor();
    await shot(page, '07-replayed');
  });

  it('replays a window of failures from the Replay tab, after a confirmation', async () => {
    const page = customerA();
    await openTab(page, 'Replay');
    await page.getByText('1 failed delivery in this window.').waitFor();
    await shot(page, '08-replay-window');
    await expectAccessible(page, 'replay');
    await page.getByRole('button', { name: 'Replay deliveries…' }).click();
    const confirm = page.getByRole('dialog', { name: 'Replay failed deliveries?' });
    await confirm.waitFor();
    await shot(page, '08b-replay-window-confirm', false);
    await expectAccessible(page, 'replay-window-dialog');
    await confirm.getByRole('button', { name: 'Replay', exact: true }).click();
    await page.getByText('1 delivery replayed', { exact: true }).waitFor();

    await openTab(page, 'Delivery log');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await poll(
      'every delivery to succeed',
      async () => {
        const statuses = await page.locator('tbody tr[data-delivery]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status')));
        return statuses.length === 3 && statuses.every((s) => s === 'succeeded');
      },
      20_000,
    );
    deliveriesOfA.push(
      ...(await page.locator('tbody tr[data-delivery]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-delivery') ?? ''))),
    );
    await shot(page, '09-delivery-log-succeeded');
  });

  it('creates, rotates and deletes a credential without ever showing the secret', async () => {
    const page = customerA();
    await openTab(page, 'Credentials');
    await page.locator('tr[data-credential="Orders endpoint signing secret"]').waitFor();
    await page.getByRole('button', { name: 'Add credential' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Partner API token');
    await page.getByLabel('Kind').selectOption('bearer');
    const secretInput = page.getByLabel('Token', { exact: true });
    expect(await secretInput.getAttribute('type')).toBe('password');
    await secretInput.fill('tok_live_very_secret_1');
    await shot(page, '10-credential-form');
    await expectAccessible(page, 'credential-form');
    await page.getByRole('button', { name: 'Save credential' }).click();
    const row = page.locator('tr[data-credential="Partner API token"]');
    await row.waitFor();
    expect(await page.content()).not.toContain('tok_live_very_secret_1');
    await shot(page, '11-credentials');
    await expectAccessible(page, 'credentials');

    await page.getByRole('button', { name: 'Rotate Partner API token' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rotate “Partner API token”' });
    await dialog.getByLabel('Token', { exact: true }).fill('tok_live_very_secret_2');
    await expectAccessible(page, 'credential-rotate-dialog');
    await dialog.getByRole('button', { name: 'Rotate credential' }).click();
    await page.getByText('“Partner API token” rotated.', { exact: false }).waitFor();
    // The row updates when the list is refetched after the rotation: wait for it.
    await row.getByText('Rotated', { exact: false }).waitFor();
    expect(await page.content()).not.toContain('tok_live_very_secret_2');

    // The generated signing secret is in use: deleting it answers 409, shown in the dialog.
    await page.getByRole('button', { name: 'Delete Orders endpoint signing secret' }).click();
    const refuse = page.getByRole('dialog', { name: 'Delete “Orders endpoint signing secret”?' });
    await refuse.getByRole('button', { name: 'Delete credential' }).click();
    await refuse.getByText('a destination uses this credential').waitFor();
    await refuse.getByRole('button', { name: 'Cancel' }).click();

    await page.getByRole('button', { name: 'Delete Partner API token' }).click();
    await page.getByRole('dialog', { name: 'Delete “Partner API token”?' }).getByRole('button', { name: 'Delete credential' }).click();
    await page.getByText('“Partner API token” deleted.').waitFor();
    // The list reloads after the notice: wait for the row to go, rather than count at once.
    await row.waitFor({ state: 'detached' });
    expect(await row.count()).toBe(0);
  });

  it('sets up an AWS IAM role credential with the customer’s external id and trust policy', async () => {
    const page = customerA();
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: demoUrl });
    externalIdOfA = await openAwsRoleForm(page);
    expect(externalIdOfA).toMatch(/^pushrail-[0-9a-f]{32}$/);
    // The very id the host keeps for this customer, and the deployment's account.
    const trust = await awsRoleOf(page);
    expect(trust.external_id).toBe(externalIdOfA);
    expect(trust.account_id).toBe(AWS_ACCOUNT_ID);
    const card = page.locator('.pr-aws-role');
    await expect(card.locator('ol li').first().textContent()).resolves.toContain(`Another AWS account as the trusted entity: account ID ${AWS_ACCOUNT_ID}`);
    const policyText = (await page.getByLabel('Trust policy', { exact: true }).textContent()) ?? '';
    expect(policyText).toMatch(/^{\n {2}"Version": "2012-10-17",\n {2}"Statement": \[/);
    const policy = JSON.parse(policyText) as {
      Statement: { Principal: { AWS: string }; Action: string; Condition: { StringEquals: Record<string, string> } }[];
    };
    expect(policy.Statement[0]?.Principal.AWS).toBe(`arn:aws:iam::${AWS_ACCOUNT_ID}:root`);
    expect(policy.Statement[0]?.Action).toBe('sts:AssumeRole');
    expect(policy.Statement[0]?.Condition.StringEquals['sts:ExternalId']).toBe(externalIdOfA);

    // Copy puts it on the clipboard and says so.
    await page.getByRole('button', { name: 'Copy external ID' }).click();
    await card.getByText('Copied', { exact: true }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(externalIdOfA);

    await page.getByLabel('Name', { exact: true }).fill('Orders queue role');
    const roleArn = 'arn:aws:iam::210987654321:role/pushrail-orders';
    await page.getByLabel('Role ARN').fill(roleArn);
    await shot(page, '11b-aws-role-setup');
    await expectAccessible(page, 'credential-form-aws-role');
    await page.getByRole('button', { name: 'Save credential' }).click();
    const row = page.locator('tr[data-credential="Orders queue role"]');
    await row.waitFor();
    await expect(row.locator('td').nth(1).textContent()).resolves.toBe('AWS IAM role');
    await expect(row.locator('code').textContent()).resolves.toMatch(new RegExp(`^${roleArn} · `));
    await shot(page, '11c-aws-role-credential');

    // Rotating it reminds of the external id the new role must require.
    await page.getByRole('button', { name: 'Rotate Orders queue role' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rotate “Orders queue role”' });
    await dialog.getByText(externalIdOfA, { exact: true }).waitFor();
    await dialog.getByRole('button', { name: 'Copy external ID' }).waitFor();
    await shot(page, '11d-aws-role-rotate', false);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
  });

  it('takes an Azure Service Bus connection string apart into a shared access policy credential', async () => {
    // Needs plugins/dist/azure_service_bus.wasm (and gcs.wasm for the Google help text). A customer
    // of their own, so that A's audit counts stay as they are.
    const { context, page } = await newCustomerPage('acme-customer-d');
    try {
      const key = 'cHVzaHJhaWwtZTJlLW5vdC1hLXJlYWwta2V5LTAwMDE=';
      const sent: string[] = [];
      page.on('request', (request) => {
        if (request.method() === 'POST' && request.url().includes('/embed/v1/credentials')) sent.push(request.postData() ?? '');
      });
      await openTab(page, 'Credentials');
      await page.getByRole('button', { name: 'Add credential' }).first().click();
      await page.getByLabel('Name', { exact: true }).fill('Orders bus');

      // Where a service account's key is found: the SDK's schema, shown above the form.
      await page.getByLabel('Kind').selectOption({ label: 'GCP service account' });
      const keyFile = page.getByText('IAM & Admin → Service accounts → the account → Keys → Add key', { exact: false });
      await keyFile.waitFor();
      const group = page.locator('.pr-schema-form[role="group"]');
      expect(await group.getAttribute('aria-describedby')).toBe(await keyFile.getAttribute('id'));
      expect(await page.getByLabel('Paste a connection string').count()).toBe(0);

      await page.getByLabel('Kind').selectOption({ label: 'Azure shared access policy' });
      const paste = page.getByLabel('Paste a connection string');
      expect(await paste.getAttribute('type')).toBe('password');
      await page.getByText('Azure portal → your Service Bus namespace → Settings → Shared access policies', { exact: false }).waitFor();

      // Without the key: said inline, nothing filled.
      await paste.fill('Endpoint=sb://acme-orders.servicebus.windows.net/;SharedAccessKeyName=pushrail-send;EntityPath=orders');
      await page.getByText('The connection string has no SharedAccessKey.').waitFor();
      expect(await paste.getAttribute('aria-invalid')).toBe('true');
      expect(await page.getByLabel('Shared access policy name').inputValue()).toBe('');

      await paste.fill(
        `Endpoint=sb://acme-orders.servicebus.windows.net/;SharedAccessKeyName=pushrail-send;SharedAccessKey=${key};EntityPath=orders`,
      );
      await page.getByText('Filled in the policy name “pushrail-send” and its key from the connection string.').waitFor();
      expect(await page.getByLabel('Shared access policy name').inputValue()).toBe('pushrail-send');
      expect(await page.getByLabel('Shared access policy key').inputValue()).toBe(key);
      expect(await paste.inputValue()).toBe('');
      expect(await page.getByText('The connection string has no SharedAccessKey.').count()).toBe(0);
      await shot(page, '11f-service-bus-connection-string');
      await expectAccessible(page, 'credential-form-service-bus');

      await page.getByRole('button', { name: 'Save credential' }).click();
      const row = page.locator('tr[data-credential="Orders bus"]');
      await row.waitFor();
      await expect(row.locator('td').nth(1).textContent()).resolves.toBe('Azure shared access policy');
      // The fingerprint shows the policy's name, not its key.
      await expect(row.locator('code').textContent()).resolves.toMatch(/^pushrail-send · /);
      expect(await page.content()).not.toContain(key);

      // Only the parsed fields went to the API, never the connection string.
      expect(sent).toHaveLength(1);
      expect(JSON.parse(sent[0] ?? '{}')).toEqual({ name: 'Orders bus', kind: 'azure_sas_key', secret: { key_name: 'pushrail-send', key } });
      expect(sent[0]).not.toMatch(/Endpoint|SharedAccessKey|servicebus/);

      // Rotating takes a connection string too.
      await page.getByRole('button', { name: 'Rotate Orders bus' }).click();
      const dialog = page.getByRole('dialog', { name: 'Rotate “Orders bus”' });
      await dialog
        .getByLabel('Paste a connection string')
        .fill(`Endpoint=sb://acme-orders.servicebus.windows.net/;SharedAccessKeyName=pushrail-send-2;SharedAccessKey=${key.slice(0, -4)}MDI=`);
      expect(await dialog.getByLabel('Shared access policy name').inputValue()).toBe('pushrail-send-2');
      await expectAccessible(page, 'credential-rotate-service-bus');
      await dialog.getByRole('button', { name: 'Rotate credential' }).click();
      await page.getByText('“Orders bus” rotated.', { exact: false }).waitFor();
      await row.getByText('Rotated', { exact: false }).waitFor();
      await expect(row.locator('code').textContent()).resolves.toMatch(/^pushrail-send-2 · /);
      expect(sent).toHaveLength(2);
      expect(JSON.parse(sent[1] ?? '{}')).toEqual({ secret: { key_name: 'pushrail-send-2', key: `${key.slice(0, -4)}MDI=` } });
    } finally {
      await context.close();
    }
  });

  it('shows customer A’s own actions in the audit log, filterable by action and time', async () => {
    const page = customerA();
    await openTab(page, 'Audit log');
    const rows = page.locator('tbody tr[data-action]');
    await rows.first().waitFor();
    // Every session the demo minted is there too: page through all of it.
    const more = page.getByRole('button', { name: 'Load more' });
    while (await more.isVisible()) {
      const before = await rows.count();
      await more.click();
      await poll('the next page', async () => (await rows.count()) > before);
    }
    const actions = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action') ?? ''));
    for (const expected of ['session.issue', 'destination.create', 'destination.update', 'credential.create', 'credential.rotate', 'credential.delete', 'replay.create']) {
      expect(actions, expected).toContain(expected);
    }
    await expect(page.locator('.pr-pagination').textContent()).resolves.toContain(`${String(actions.length)} entries shown`);

    // The credentials family: the signing secret generated for the refused first try (created, then
    // taken back), the one kept, the partner token (created, rotated, deleted) and the IAM role.
    await page.getByLabel('Action', { exact: true }).selectOption({ label: 'All credentials' });
    await poll('only credential entries', async () => {
      const shown = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action') ?? ''));
      return shown.length === 7 && shown.every((a) => a.startsWith('credential.'));
    });
    const of = (action: string) => page.locator(`tbody tr[data-action="${action}"]`);
    expect(await of('credential.create').count()).toBe(4);
    expect(await of('credential.rotate').count()).toBe(1);
    expect(await of('credential.delete').count()).toBe(2);
    // A credential that still exists is named; a deleted one only has its id.
    await of('credential.create').filter({ hasText: 'Orders queue role' }).waitFor();
    await of('credential.create').filter({ hasText: 'Orders endpoint signing secret' }).waitFor();
    const deletedToken = (await of('credential.delete').first().locator('td').nth(2).textContent()) ?? '';
    expect(deletedToken).toMatch(/^cred_\w+$/);
    await expect(of('credential.rotate').locator('td').nth(2).textContent()).resolves.toBe(deletedToken);
    await expect(of('credential.rotate').locator('td').nth(3).textContent()).resolves.toMatch(/^Session/);
    await shot(page, '11e-audit-log');
    await expectAccessible(page, 'audit');
    // The same as the API answers for this customer.
    const answer = (await (
      await fetch(`${host.url}/embed/v1/audit?action=credential.*`, { headers: { Authorization: `Bearer ${await tokenOf(page)}` } })
    ).json()) as { items: { action: string; target: string }[] };
    expect(answer.items.map((e) => e.action)).toEqual(
      await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action') ?? '')),
    );

    await page.getByLabel('Action', { exact: true }).selectOption({ label: 'Destination created' });
    await poll('the destination it created', async () => (await rows.count()) === 1 && (await of('destination.create').count()) === 1);
    await expect(of('destination.create').textContent()).resolves.toContain('Orders endpoint');

    // A window that starts tomorrow holds nothing.
    const tomorrow = new Date(Date.now() + 24 * 3600_000);
    const pad = (n: number) => String(n).padStart(2, '0');
    await page.getByLabel('Since', { exact: true }).fill(
      `${String(tomorrow.getFullYear())}-${pad(tomorrow.getMonth() + 1)}-${pad(tomorrow.getDate())}T${pad(tomorrow.getHours())}:${pad(tomorrow.getMinutes())}`,
    );
    await page.getByText('No entries match these filters').waitFor();
    await expectAccessible(page, 'audit-empty');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await rows.first().waitFor();
  });

  it('shows customer B none of customer A’s destinations or deliveries', async () => {
    const { context, page } = await newCustomerPage('acme-customer-b');
    try {
      await page.getByText('No destinations yet').waitFor();
      await openTab(page, 'Delivery log');
      await page.getByText('No deliveries yet').waitFor();
      await shot(page, '12-customer-b');
      // B's audit log holds B's own sessions, and nothing A did.
      await openTab(page, 'Audit log');
      const audited = page.locator('tbody tr[data-action]');
      await audited.first().waitFor();
      expect(new Set(await audited.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action'))))).toEqual(new Set(['session.issue']));
      // And through the API with B's token: A's ids are unknown (404, no existence oracle).
      const token = await tokenOf(page);
      const headers = { Authorization: `Bearer ${token}` };
      expect((await fetch(`${host.url}/embed/v1/destinations/${destinationId}`, { headers })).status).toBe(404);
      for (const id of deliveriesOfA) {
        expect((await fetch(`${host.url}/embed/v1/deliveries/${id}`, { headers })).status).toBe(404);
      }
      // B has an external id of its own: a role set up for A can't be assumed for B.
      const externalIdOfB = await openAwsRoleForm(page);
      expect(externalIdOfB).toMatch(/^pushrail-[0-9a-f]{32}$/);
      expect(externalIdOfB).not.toBe(externalIdOfA);
      expect((await awsRoleOf(page)).external_id).toBe(externalIdOfB);
    } finally {
      await context.close();
    }
  });

  it('signs customer A out when the operator revokes their sessions, until they sign in again', async () => {
    const page = customerA();
    await openTab(page, 'Destinations');
    await page.locator('tr[data-destination="Orders endpoint"]').waitFor();
    await page.locator('#operator-customer').selectOption('acme-customer-a');
    await page.getByRole('button', { name: 'Revoke sessions' }).click();
    await page.getByTestId('operator-log').getByText(/Revoke: \d+ sessions? of acme-customer-a revoked/).waitFor();

    // The next request answers 401; the refresh is refused by the demo backend: signed out.
    await page.getByRole('tab', { name: 'Delivery log' }).click();
    await page.getByText("You're signed out").waitFor();
    expect(await page.locator('.pr-embed').getAttribute('data-pushrail-state')).toBe('signed_out');
    expect(await page.locator('tr[data-delivery]').count()).toBe(0);
    await shot(page, '13-signed-out');
    await expectAccessible(page, 'signed-out');

    // "Try again" asks the vendor again, who still refuses.
    await page.getByRole('button', { name: 'Try again' }).click();
    await page.getByText("You're signed out").waitFor();
    await page.getByText('Your access was revoked by Acme').waitFor();

    // Signing in again lifts it.
    await page.getByRole('button', { name: 'Switch customer' }).click();
    await signIn(page, 'acme-customer-a');
    await page.locator('tr[data-destination="Orders endpoint"]').waitFor();
  });

  it('renews short-lived tokens in the background, before the host refuses them', async () => {
    // A second demo backend minting 3-second tokens: the embed refreshes each halfway through.
    const shortDemo = await startDemo(host, { DEMO_TOKEN_TTL: '3' });
    const { context, page } = await newCustomerPage('acme-customer-b', shortDemo);
    try {
      const minted: number[] = [];
      const refused: string[] = [];
      page.on('request', (request) => {
        if (request.url().endsWith('/api/token')) minted.push(Date.now());
      });
      page.on('response', (response) => {
        if (response.url().includes('/embed/v1/') && response.status() === 401) refused.push(response.url());
      });
      await page.getByText('No destinations yet').waitFor();
      await poll('three background renewals', () => Promise.resolve(minted.length >= 3), 15_000);
      // Still signed in, and every request carries a live token: no 401 was ever needed.
      await openTab(page, 'Delivery log');
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByText('No deliveries yet').waitFor();
      expect(refused).toEqual([]);
      expect(await page.locator('.pr-embed').getAttribute('data-pushrail-state')).toBe('ready');
    } finally {
      await context.close();
    }
  });

  it('creates a webhook destination with the keyboard alone', async () => {
    // A customer of their own (A's audit counts stay as they are), in Acme's default (light) theme.
    ({ context: contextC, page: pageC } = await newCustomerPage('acme-customer-c'));
    const page = pageC;
    await page.getByText('No destinations yet').waitFor();
    // From the top of the page: Tab through Acme's own controls into the embed's tab list.
    await page.evaluate(() => {
      (document.activeElement as HTMLElement | null)?.blur();
    });
    const tab = await tabTo(page, /^Destinations$/);
    expect(tab.role).toBe('tab');
    expect(tab.inEmbed).toBe(true);
    // Next stop: the panel's "Add destination" (the empty state's own button comes after it).
    await page.keyboard.press('Tab');
    expect(await focused(page)).toMatchObject({ name: 'Add destination', inEmbed: true });
    await page.keyboard.press('Enter');

    // The form opens with focus on its first field: the chosen destination type.
    const first = await poll('focus in the new destination form', async () => {
      const f = await focused(page);
      return f.inForm === 'New destination' ? f : undefined;
    });
    expect(first).toMatchObject({ tag: 'input', type: 'radio', checked: true });
    // Arrow keys move through the radio group: pick the webhook type.
    for (let i = 0; !(await focused(page)).name.startsWith('Webhook'); i += 1) {
      if (i > 40) throw new Error('no Webhook type in the radio group');
      await page.keyboard.press('ArrowDown');
    }
    expect(await focused(page)).toMatchObject({ type: 'radio', checked: true });

    await tabTo(page, /^Name/);
    await page.keyboard.type('Keyboard endpoint');
    await tabTo(page, /^Endpoint URL/);
    await page.keyboard.type(receiver.url);
    await tabTo(page, /^Event types/);
    await page.keyboard.type('order.*');
    expect(await page.getByLabel('Name', { exact: true }).inputValue()).toBe('Keyboard endpoint');
    await tabTo(page, /^Create destination$/);
    // Shift+Tab goes back to Cancel, Tab forward again.
    await page.keyboard.press('Shift+Tab');
    expect((await focused(page)).name).toBe('Cancel');
    await page.keyboard.press('Tab');
    expect((await focused(page)).name).toBe('Create destination');
    await page.keyboard.press('Space');

    // Back on the list, focus returns to the button that opened the form.
    await page.getByText('“Keyboard endpoint” created.').waitFor();
    await page.locator('tr[data-destination="Keyboard endpoint"]').waitFor();
    await poll('focus back on "Add destination"', async () => {
      const f = await focused(page);
      return f.name === 'Add destination' && f.inEmbed && f.id.endsWith('-dst-add');
    });

    const token = await tokenOf(page);
    const list = (await (
      await fetch(`${host.url}/embed/v1/destinations`, { headers: { Authorization: `Bearer ${token}` } })
    ).json()) as { items: { name: string; type: string; enabled: boolean; event_types: string[]; config: Record<string, unknown> }[] };
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({
      name: 'Keyboard endpoint',
      type: 'webhook',
      enabled: true,
      event_types: ['order.*'],
      config: { url: receiver.url },
    });
    await page.evaluate(() => {
      (document.activeElement as HTMLElement | null)?.blur();
    });
    await shot(page, '14-theme-default');
  });

  it('follows Acme’s dark mode with the dark preset, accessible too', async () => {
    if (!pageC) throw new Error('customer C has no page');
    const page = pageC;
    try {
      await page.getByRole('button', { name: 'Dark mode' }).click();
      expect(await page.getByRole('button', { name: 'Dark mode' }).getAttribute('aria-pressed')).toBe('true');
      const embed = page.locator('.pr-embed');
      await poll('the dark preset on the embed', async () =>
        (await embed.evaluate((el) => getComputedStyle(el).colorScheme)) === 'dark');
      expect(await embed.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(18, 20, 28)');
      await page.locator('tr[data-destination="Keyboard endpoint"]').waitFor();
      // Colours change with a short transition: let it end before the screenshot and the checks.
      await page.evaluate(() =>
        Promise.all(document.getAnimations().filter((a) => a instanceof CSSTransition).map((a) => a.finished)),
      );
      await shot(page, '15-theme-dark');
      await expectAccessible(page, 'dark-destinations');

      // The form, with the client's field errors (danger text on the dark background).
      await page.getByRole('button', { name: 'Add destination' }).first().click();
      await page.getByRole('radio', { name: /^Webhook/ }).check();
      await page.getByRole('button', { name: 'Create destination' }).click();
      await page.getByText('Give the destination a name.').waitFor();
      await shot(page, '16-theme-dark-form');
      await expectAccessible(page, 'dark-destination-form');
      await page.getByRole('button', { name: 'Cancel' }).click();

      await openTab(page, 'Credentials');
      await page.locator('tr[data-credential="Keyboard endpoint signing secret"]').waitFor();
      await expectAccessible(page, 'dark-credentials');
      await openTab(page, 'Delivery log');
      await page.getByText('No deliveries yet').waitFor();
      await expectAccessible(page, 'dark-deliveries');
    } finally {
      await contextC?.close();
      pageC = undefined;
    }
  });

  it('raised no page errors', () => {
    expect(pageErrors).toEqual([]);
  });

  it('checked every screen with axe (no serious or critical violation)', () => {
    for (const screen of [
      'destinations', 'destination-form', 'credentials', 'credential-form', 'deliveries', 'delivery-detail', 'replay', 'audit',
      'dark-destinations', 'dark-destination-form', 'dark-credentials', 'dark-deliveries',
    ]) {
      expect(checkedScreens, screen).toContain(screen);
    }
  });
});

describe('a destination the host disabled after failing, in the embed', () => {
  // A host of its own: disabling after 2 s of failures, no circuit breaking, and retries that
  // outlast the window (a delivery still has attempts left when its destination is disabled).
  let failingHost: Host;
  let failingReceiver: Receiver;
  let failingDemo: string;
  const customer = 'acme-customer-e';

  beforeAll(async () => {
    failingHost = await startHost({
      retrySchedule: '0s,1s,1s,1s,1s,1s,1s,1s,1s,1s',
      serveArgs: ['--auto-disable-after', '2s', '--circuit-after', '0'],
    });
    failingReceiver = await startReceiver();
    failingReceiver.status = 503;
    failingDemo = await startDemo(failingHost);
  });

  it('shows the reason the host disabled it; enabling it again delivers the paused backlog', async () => {
    const vendor = { Authorization: `Bearer ${failingHost.apiKey}`, 'Content-Type': 'application/json' };
    const session = await fetch(`${failingHost.url}/v1/sessions`, { method: 'POST', headers: vendor, body: JSON.stringify({ external_id: customer }) });
    expect(session.status).toBe(201);
    const embed = { Authorization: `Bearer ${((await session.json()) as { token: string }).token}`, 'Content-Type': 'application/json' };
    const created = await fetch(`${failingHost.url}/embed/v1/destinations`, {
      method: 'POST',
      headers: embed,
      body: JSON.stringify({ type: 'webhook', name: 'Orders endpoint', config: { url: failingReceiver.url }, event_types: ['order.*'] }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    // Three events through the vendor API, each answered 503 by the receiver.
    const eventIds: string[] = [];
    for (const n of [1, 2, 3]) {
      const published = await fetch(`${failingHost.url}/v1/events`, {
        method: 'POST',
        headers: vendor,
        body: JSON.stringify({ external_id: customer, type: 'order.created', payload: { order_id: `ord_paused_${String(n)}` } }),
      });
      expect(published.ok).toBe(true);
      eventIds.push(((await published.json()) as { event_id: string }).event_id);
    }

    type Shown = { enabled: boolean; disabled_reason?: string | null };
    const destination = async () =>
      (await (await fetch(`${failingHost.url}/embed/v1/destinations/${id}`, { headers: embed })).json()) as Shown;
    const deliveries = async () =>
      ((await (await fetch(`${failingHost.url}/embed/v1/deliveries?destination_id=${id}`, { headers: embed })).json()) as {
        items: { status: string; attempt_count: number; event_id: string }[];
      }).items;
    const disabled = await poll('the host to disable the destination', async () => {
      const shown = await destination();
      return shown.enabled ? undefined : shown;
    }, 20_000);
    expect(disabled.disabled_reason).toMatch(/^disabled by Pushrail: every delivery failed for 2s \(last error: .*503.*\)/);

    // Paused, not failed: the backlog stays pending, uses up no attempts, and the receiver hears
    // nothing more for over two retry delays (a batch that was on its way is given time to end).
    await new Promise((r) => setTimeout(r, 500));
    const heard = failingReceiver.requests.length;
    expect(heard).toBeGreaterThanOrEqual(3);
    expect(failingReceiver.requests.every((r) => r.answeredWith === 503)).toBe(true);
    const before = await deliveries();
    await new Promise((r) => setTimeout(r, 2_500));
    expect(failingReceiver.requests).toHaveLength(heard);
    const paused = await deliveries();
    expect(paused.map((d) => d.status)).toEqual(['pending', 'pending', 'pending']);
    expect(paused.map((d) => d.attempt_count)).toEqual(before.map((d) => d.attempt_count));
    expect(new Set(paused.map((d) => d.event_id))).toEqual(new Set(eventIds));

    const { context, page } = await newCustomerPage(customer, failingDemo);
    try {
      // The destinations list shows the status, and the host's reason under it.
      const row = page.locator('tr[data-destination="Orders endpoint"]');
      await row.getByText('Disabled', { exact: true }).waitFor();
      const reason = row.locator('[data-disabled-reason]');
      await expect(reason.textContent()).resolves.toBe(disabled.disabled_reason);
      expect(await page.getByRole('button', { name: 'Send test event to Orders endpoint' }).isDisabled()).toBe(true);
      await shot(page, '17-destination-disabled');
      await expectAccessible(page, 'destination-disabled');

      // The delivery log shows the backlog waiting.
      await openTab(page, 'Delivery log');
      const rows = page.locator('tbody tr[data-delivery]');
      const statuses = () => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-status')));
      await poll('three pending deliveries in the log', async () => {
        const shown = await statuses();
        return shown.length === 3 && shown.every((s) => s === 'pending');
      });

      // The endpoint is fixed; the customer enables the destination again.
      failingReceiver.status = 200;
      await openTab(page, 'Destinations');
      await page.getByRole('button', { name: 'Enable Orders endpoint' }).click();
      await row.getByText('Enabled', { exact: true }).waitFor();
      await reason.waitFor({ state: 'detached' });
      expect((await destination()).disabled_reason ?? null).toBeNull();

      // The paused deliveries go out: the receiver gets each event, and the log shows them succeeded.
      const delivered = () =>
        new Set(failingReceiver.requests.filter((r) => r.answeredWith === 200).map((r) => String(r.headers['webhook-id'])));
      await poll('the receiver to get the paused backlog', () => Promise.resolve(eventIds.every((e) => delivered().has(e))), 20_000);
      await openTab(page, 'Delivery log');
      await poll('three succeeded deliveries in the log', async () => {
        await page.getByRole('button', { name: 'Refresh' }).click();
        const shown = await statuses();
        return shown.length === 3 && shown.every((s) => s === 'succeeded');
      }, 20_000);
      expect((await deliveries()).map((d) => d.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
      await shot(page, '18-paused-backlog-delivered');
      expect(pageErrors.filter((e) => e.startsWith(`${customer}:`))).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
