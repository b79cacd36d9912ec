/** The component against a fake embed API: screens, error mapping, sign-out, keyboard tabs. */

import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { PushrailEmbed } from '../../src/PushrailEmbed.js';
import { WAITING_NOTE } from '../../src/screens/Deliveries.js';
import { CIRCUIT_OPEN_NOTE } from '../../src/screens/Destinations.js';
import { apiError, json, jwt } from './helpers.js';

const webhookType = {
  type: 'webhook',
  name: 'Webhook',
  description: 'HTTPS POST of each event',
  config_schema: {
    type: 'object',
    required: ['url'],
    properties: {
      headers: { type: 'object', title: 'Custom headers', additionalProperties: { type: 'string' } },
      url: { type: 'string', title: 'Endpoint URL', format: 'uri', pattern: '^https?://' },
    },
  },
  credential_kinds: [
    { kind: 'webhook_secret', schema: { type: 'object', properties: { secret: { type: 'string', title: 'Signing secret' } } } },
    { kind: 'bearer', schema: { type: 'object', required: ['token'], properties: { token: { type: 'string', title: 'Token' } } } },
  ],
  credential_required: false,
};

const sqsType = {
  type: 'sqs',
  name: 'Amazon SQS',
  description: 'Sends each event as a message to an SQS queue',
  config_schema: { type: 'object', required: ['queue_url'], properties: { queue_url: { type: 'string', title: 'Queue URL' } } },
  credential_kinds: [
    {
      kind: 'aws_access_key',
      schema: {
        type: 'object',
        required: ['access_key_id', 'secret_access_key'],
        properties: { access_key_id: { type: 'string', title: 'Access key id' }, secret_access_key: { type: 'string', title: 'Secret access key' } },
      },
    },
    {
      kind: 'aws_role',
      schema: {
        type: 'object',
        required: ['role_arn'],
        properties: {
          role_arn: { type: 'string', title: 'Role ARN', pattern: '^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\\w+=,.@/-]{1,512}$' },
        },
      },
    },
  ],
  credential_required: true,
};

const EXTERNAL_ID = 'pushrail-0123456789abcdef0123456789abcdef';
const awsRole = {
  account_id: '123456789012',
  external_id: EXTERNAL_ID,
  principal: 'arn:aws:iam::123456789012:root',
  // Keys sorted, as the host's JSON has them.
  trust_policy: {
    Statement: [
      {
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'sts:ExternalId': EXTERNAL_ID } },
        Effect: 'Allow',
        Principal: { AWS: 'arn:aws:iam::123456789012:root' },
      },
    ],
    Version: '2012-10-17',
  },
};
/** The trust policy as shown and copied: pretty-printed, in IAM's customary key order. */
const POLICY_TEXT = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {
        "AWS": "arn:aws:iam::123456789012:root"
      },
      "Action": "sts:AssumeRole",
      "Condition": {
        "StringEquals": {
          "sts:ExternalId": "${EXTERNAL_ID}"
        }
      }
    }
  ]
}`;
const ROLES_UNAVAILABLE =
  'this deployment has no AWS credentials of its own to assume roles with; use an aws_access_key credential';

type Handler = (method: string, path: string, body: unknown) => Response | undefined;

let requests: { method: string; path: string; body: unknown; auth: string | null }[] = [];

function serve(handler: Handler) {
  requests = [];
  vi.stubGlobal(
    'fetch',
    vi.fn((input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const method = init?.method ?? 'GET';
      const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
      requests.push({ method, path: url.pathname + url.search, body, auth: new Headers(init?.headers).get('Authorization') });
      const path = url.pathname.replace(/^\/embed\/v1/, '');
      const answer =
        handler(method, path, body) ??
        (method === 'GET' && path === '/destination-types'
          ? json(200, [webhookType])
          : method === 'GET' && path === '/destinations'
            ? json(200, { items: [] })
            : method === 'GET' && path === '/credentials'
              ? json(200, { items: [] })
              : method === 'GET' && path === '/deliveries'
                ? json(200, { items: [], next_cursor: null })
                : apiError(404, 'not_found', 'route not found'));
      return Promise.resolve(answer);
    }),
  );
}

beforeEach(() => {
  vi.stubGlobal('requestAnimationFrame', (cb: FrameRequestCallback) => setTimeout(() => { cb(0); }, 0));
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const token = () => Promise.resolve(jwt(900));

describe('<PushrailEmbed>', () => {
  it('lists destinations with their status as text and icon', async () => {
    serve((method, path) =>
      method === 'GET' && path === '/destinations'
        ? json(200, {
            items: [
              {
                id: 'dst_1', type: 'webhook', name: 'Orders', config: { url: 'https://a.example/hook' },
                credential_id: null, event_types: ['order.*'], enabled: false,
                created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
              },
            ],
          })
        : undefined,
    );
    render(<PushrailEmbed baseUrl="https://pushrail.test" fetchToken={token} />);
    await screen.findByText('Orders');
    expect(screen.getByText('https://a.example/hook')).toBeTruthy();
    expect(screen.getByText('order.*')).toBeTruthy();
    const badge = screen.getByText('Disabled').closest('.pr-badge');
    expect(badge?.querySelector('svg')).not.toBeNull();
    expect(requests[0]?.auth).toMatch(/^Bearer ey/);
  });

  it('says why Pushrail disabled a destination, under its status', async () => {
    const reason = 'disabled by Pushrail: every delivery failed for 5days (last error: HTTP 503)';
    serve((method, path) =>
      method === 'GET' && path === '/destinations'
        ? json(200, {
            items: [
              {
                id: 'dst_1', type: 'webhook', name: 'Orders', config: { url: 'https://a.example/hook' },
                credential_id: null, event_types: [], enabled: false, disabled_reason: reason,
                created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
              },
              {
                id: 'dst_2', type: 'webhook', name: 'Paused by hand', config: { url: 'https://b.example/hook' },
                credential_id: null, event_types: [], enabled: false, disabled_reason: null,
                created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
              },
            ],
          })
        : undefined,
    );
    render(<PushrailEmbed baseUrl="https://pushrail.test" fetchToken={token} />);
    await screen.findByText('Orders');
    const shown = screen.getByText(reason);
    expect(shown.closest('tr')?.getAttribute('data-destination')).toBe('Orders');
    expect(document.querySelectorAll('[data-disabled-reason]')).toHaveLength(1);
  });

  it('says when a destination’s circuit is open, and which deliveries wait on it', async () => {
    serve((method, path) => {
      if (method === 'GET' && path === '/destinations') {
        return json(200, {
          items: [
            {
              id: 'dst_1', type: 'webhook', name: 'Orders', config: { url: 'https://a.example/hook' },
              credential_id: null, event_types: [], enabled: true, disabled_reason: null,
              circuit: 'open', next_probe_at: '2026-01-01T00:05:00Z',
              created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
            },
            {
              id: 'dst_2', type: 'webhook', name: 'Fine', config: { url: 'https://b.example/hook' },
              credential_id: null, event_types: [], enabled: true, disabled_reason: null,
              circuit: 'closed', next_probe_at: null,
              created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
            },
          ],
        });
      }
      if (method === 'GET' && path.startsWith('/deliveries')) {
        const row = (id: string, waiting: boolean) => ({
          id, event_id: `evt_${id}`, event_type: 'order.created', destination_id: 'dst_1', status: 'pending',
          attempt_count: 0, next_attempt_at: '2026-01-01T00:05:00Z', created_at: '2026-01-01T00:00:00Z',
          updated_at: '2026-01-01T00:00:00Z', ...(waiting ? { waiting_on: 'open_circuit' } : {}),
        });
        return json(200, { items: [row('dlv_1', true), row('dlv_2', false)], next_cursor: null });
      }
      return undefined;
    });
    render(<PushrailEmbed baseUrl="https://pushrail.test" fetchToken={token} />);
    await screen.findByText('Orders');
    const note = await screen.findByText(new RegExp(CIRCUIT_OPEN_NOTE.slice(0, 20)));
    expect(note.closest('tr')?.getAttribute('data-destination')).toBe('Orders');
    expect(document.querySelectorAll('[data-circuit-open]')).toHaveLength(1);

    fireEvent.click(screen.getByRole('tab', { name: 'Delivery log' }));
    await screen.findByText(WAITING_NOTE);
    expect(document.querySelectorAll('[data-waiting-on="open_circuit"]')).toHaveLength(1);
    expect(screen.getByText(WAITING_NOTE).closest('tr')?.getAttribute('data-delivery')).toBe('dlv_1');
  });

  it('creates a destination and maps the API’s field errors onto the generated form', async () => {
    serve((method, path, body) => {
      if (method === 'POST' && path === '/credentials') return json(201, { id: 'cred_9', name: 'Mine signing secret', kind: 'webhook_secret' });
      if (method === 'DELETE' && path === '/credentials/cred_9') return new Response(null, { status: 204 });
      if (method !== 'POST' || path !== '/destinations') return undefined;
      const config = (body as { config: { url: string } }).config;
      if (config.url.includes('internal')) {
        return apiError(422, 'validation_failed', 'config.url: refused', [
          { field: 'config.url', message: 'this address is not allowed' },
          { field: 'event_types[0]', message: 'not a valid pattern' },
        ]);
      }
      return json(201, { id: 'dst_2', name: 'Mine', ...(body as object) });
    });
    render(<PushrailEmbed baseUrl="https://pushrail.test" fetchToken={token} />);
    const [add] = await screen.findAllByRole('button', { name: 'Add destination' });
    if (add) fireEvent.click(add);

    // Client-side checks first: nothing is sent for an empty form.
    fireEvent.click(await screen.findByRole('button', { name: 'Create destination' }));
    await screen.findByText('Give the destination a name.');
    expect(screen.getByLabelText('Endpoint URL').getAttribute('aria-invalid')).toBe('true');
    expect(requests.some((r) => r.method === 'POST')).toBe(false);

    fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'Mine' } });
    fireEvent.change(screen.getByLabelText('Endpoint URL'), { target: { value: 'http://internal.example' } });
    fireEvent.change(screen.getByLabelText(/Event types/), { target: { value: '**bad' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create destination' }));
    await screen.findByText('this address is not allowed');
    expect(screen.getByText('not a valid pattern')).toBeTruthy();
    expect(screen.getByLabelText('Endpoint URL').getAttribute('aria-invalid')).toBe('true');
    // The signing secret is generated in the browser and stored first; the refused destination
    // takes it back with it.
    const secretPost = requests.find((r) => r.method === 'POST' && r.path === '/embed/v1/credentials');
    expect((secretPost?.body as { secret: { secret: string } }).secret.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const post = requests.find((r) => r.method === 'POST' && r.path === '/embed/v1/destinations');
    expect(post?.body).toEqual({
      type: 'webhook', name: 'Mine', config: { url: 'http://internal.example' }, event_types: ['**bad'], enabled: true,
      credential_id: 'cred_9',
    });
    expect(requests.some((r) => r.method === 'DELETE' && r.path === '/embed/v1/credentials/cred_9')).toBe(true);

    fireEvent.change(screen.getByLabelText('Endpoint URL'), { target: { value: 'https://ok.example' } });
    fireEvent.change(screen.getByLabelText(/Event types/), { target: { value: '' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create destination' }));
    const notice = await screen.findByText(/“Mine” created\. Its signing secret, shown only now/);
    expect(notice.textContent).toMatch(/whsec_[A-Za-z0-9+/]{32}/);
  });

  it('pages the delivery log with next_cursor and sends the filters as query parameters', async () => {
    const delivery = (n: number) => ({
      id: `dlv_${String(n)}`, event_id: `evt_${String(n)}`, event_type: 'order.created', destination_id: 'dst_1',
      status: 'failed', attempt_count: 3, next_attempt_at: null,
      created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
    });
    serve((method, path) => {
      if (method !== 'GET' || path !== '/deliveries') return undefined;
      const last = requests.at(-1)?.path ?? '';
      return last.includes('cursor=c1')
        ? json(200, { items: [delivery(3)], next_cursor: null })
        : json(200, { items: [delivery(1), delivery(2)], next_cursor: 'c1' });
    });
    render(<PushrailEmbed baseUrl="https://x" fetchToken={token} initialTab="deliveries" />);
    await screen.findByText('evt_1');
    fireEvent.click(screen.getByRole('button', { name: 'Load more' }));
    await screen.findByText('evt_3');
    expect(screen.getByText('3 deliveries shown')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Load more' })).toBeNull();
    expect(screen.getAllByText('Failed', { selector: '.pr-badge span' })).toHaveLength(3);

    fireEvent.change(screen.getByLabelText('Status'), { target: { value: 'failed' } });
    fireEvent.change(screen.getByLabelText('Since'), { target: { value: '2026-01-01T10:00' } });
    await waitFor(() => {
      const last = new URL(`https://x${requests.at(-1)?.path ?? ''}`);
      expect(last.searchParams.get('status')).toBe('failed');
      expect(last.searchParams.get('since')).toBe(new Date('2026-01-01T10:00').toISOString());
      expect(last.searchParams.has('cursor')).toBe(false);
    });
  });

  it('shows what was sent: the payload pretty-printed, with Copy, and a long one folded', async () => {
    const delivery = (id: string, payload: unknown) => ({
      id, event_id: `evt_${id}`, event_type: id === 'dlv_small' ? 'order.created' : 'catalog.synced', destination_id: 'dst_1',
      status: 'succeeded', attempt_count: 1, next_attempt_at: null,
      created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z', payload,
      attempts: [{ n: 1, started_at: '2026-01-01T00:00:00Z', duration_ms: 12, outcome: 'succeeded', status_code: 200 }],
    });
    const small = { order: 42, lines: [{ sku: 'A-1', qty: 2 }], note: null };
    const large = { items: Array.from({ length: 30 }, (_, i) => ({ sku: `S-${String(i)}` })) };
    serve((method, path) => {
      if (method !== 'GET') return undefined;
      if (path === '/deliveries') {
        const { payload: _a, attempts: _b, ...smallRow } = delivery('dlv_small', small);
        const { payload: _c, attempts: _d, ...largeRow } = delivery('dlv_large', large);
        return json(200, { items: [smallRow, largeRow], next_cursor: null });
      }
      if (path === '/deliveries/dlv_small') return json(200, delivery('dlv_small', small));
      if (path === '/deliveries/dlv_large') return json(200, delivery('dlv_large', large));
      return undefined;
    });
    const writeText = vi.fn((_text: string) => Promise.resolve());
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    try {
      render(<PushrailEmbed baseUrl="https://x" fetchToken={token} initialTab="deliveries" />);
      fireEvent.click(await screen.findByRole('button', { name: 'order.created, succeeded: view attempts' }));
      const code = await screen.findByLabelText('Payload', { selector: 'pre' });
      const text = JSON.stringify(small, null, 2);
      expect(code.textContent).toBe(text);
      expect(text).toBe('{\n  "order": 42,\n  "lines": [\n    {\n      "sku": "A-1",\n      "qty": 2\n    }\n  ],\n  "note": null\n}');
      expect(code.classList.contains('pr-code-folded')).toBe(false);
      expect(screen.queryByRole('button', { name: /^Show all/ })).toBeNull();
      fireEvent.click(screen.getByRole('button', { name: 'Copy payload' }));
      await screen.findByText('Copied');
      expect(writeText).toHaveBeenCalledWith(text);

      fireEvent.click(screen.getByRole('button', { name: 'Delivery log' }));
      fireEvent.click(await screen.findByRole('button', { name: 'catalog.synced, succeeded: view attempts' }));
      const long = await screen.findByLabelText('Payload', { selector: 'pre' });
      const longText = JSON.stringify(large, null, 2);
      const lines = longText.split('\n').length;
      expect(lines).toBeGreaterThan(40);
      // Folded only visually: the element holds all of it (a screen reader, a selection, Copy get the whole).
      expect(long.textContent).toBe(longText);
      expect(long.classList.contains('pr-code-folded')).toBe(true);
      const toggle = screen.getByRole('button', { name: `Show all ${String(lines)} lines` });
      expect(toggle.getAttribute('aria-expanded')).toBe('false');
      expect(toggle.getAttribute('aria-controls')).toBe(long.id);
      fireEvent.click(toggle);
      expect(long.classList.contains('pr-code-folded')).toBe(false);
      expect(screen.getByRole('button', { name: 'Show less' }).getAttribute('aria-expanded')).toBe('true');
      fireEvent.click(screen.getByRole('button', { name: 'Copy payload' }));
      await waitFor(() => {
        expect(writeText).toHaveBeenLastCalledWith(longText);
      });
    } finally {
      Reflect.deleteProperty(navigator, 'clipboard');
    }
  });

  it('lists the customer’s audit trail, filtered by action and time, paged with next_cursor', async () => {
    const entry = (n: number, action: string, target: string, actor = 'session:ses_1') => ({
      at: `2026-01-01T00:00:0${String(n)}Z`, actor, action, target,
    });
    serve((method, path) => {
      if (method === 'GET' && path === '/destinations') {
        return json(200, {
          items: [{
            id: 'dst_1', type: 'webhook', name: 'Orders', config: { url: 'https://a.example/hook' }, credential_id: null,
            event_types: [], enabled: true, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
          }],
        });
      }
      if (method !== 'GET' || path !== '/audit') return undefined;
      const last = requests.at(-1)?.path ?? '';
      if (last.includes('action=')) return json(200, { items: [entry(5, 'credential.rotate', 'cred_2')], next_cursor: null });
      return last.includes('cursor=a2')
        ? json(200, { items: [entry(1, 'session.issue', 'ses_1', 'tenant:ten_1')], next_cursor: null })
        : json(200, { items: [entry(3, 'destination.create', 'dst_1'), entry(2, 'credential.delete', 'cred_9')], next_cursor: 'a2' });
    });
    const rowOf = (action: string) =>
      waitFor(() => {
        const found = document.querySelector(`tr[data-action="${action}"]`);
        if (!found) throw new Error(`no ${action} row`);
        return found;
      });
    render(<PushrailEmbed baseUrl="https://x" fetchToken={token} initialTab="audit" />);
    const row = await rowOf('destination.create');
    expect(row.textContent).toContain('Destination created');
    // The target by its name while it exists; by id once gone. Who: a session of this customer, or the operator.
    expect(row.textContent).toContain('Orders');
    expect(row.textContent).toContain('dst_1');
    expect(row.textContent).toContain('Session');
    expect(row.textContent).toContain('ses_1');
    expect((await rowOf('credential.delete')).textContent).toContain('cred_9');
    fireEvent.click(screen.getByRole('button', { name: 'Load more' }));
    const issued = await rowOf('session.issue');
    expect(issued.textContent).toContain('Session started');
    expect(issued.textContent).toContain('Operator');
    expect(screen.getByText('3 entries shown')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Load more' })).toBeNull();
    expect(new URL(`https://x${requests.filter((r) => r.path.startsWith('/embed/v1/audit')).at(-1)?.path ?? ''}`).searchParams.get('cursor')).toBe('a2');

    // Families first in each group, then single actions.
    const select = screen.getByLabelText<HTMLSelectElement>('Action');
    expect([...select.options].map((o) => o.value)).toContain('credential.*');
    fireEvent.change(select, { target: { value: 'credential.rotate' } });
    fireEvent.change(screen.getByLabelText('Since'), { target: { value: '2026-01-01T10:00' } });
    fireEvent.change(screen.getByLabelText('Until'), { target: { value: '2026-01-02T10:00' } });
    await rowOf('credential.rotate');
    await waitFor(() => {
      const last = new URL(`https://x${requests.at(-1)?.path ?? ''}`);
      expect(last.pathname).toBe('/embed/v1/audit');
      expect(last.searchParams.get('action')).toBe('credential.rotate');
      expect(last.searchParams.get('since')).toBe(new Date('2026-01-01T10:00').toISOString());
      expect(last.searchParams.get('until')).toBe(new Date('2026-01-02T10:00').toISOString());
      expect(last.searchParams.has('cursor')).toBe(false);
    });
    expect(document.querySelector('tr[data-action="destination.create"]')).toBeNull();
    expect(screen.getByText('1 entry shown')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Clear filters' }));
    await rowOf('destination.create');
  });

  it('shows the signed-out state when fetchToken rejects', async () => {
    const onSignedOut = vi.fn();
    serve(() => undefined);
    render(
      <PushrailEmbed baseUrl="https://x" fetchToken={() => Promise.reject(new Error('Customer revoked'))} onSignedOut={onSignedOut} />,
    );
    await screen.findByText("You're signed out");
    expect(screen.getByText('Customer revoked')).toBeTruthy();
    expect(onSignedOut).toHaveBeenCalledWith('token_rejected', 'Customer revoked');
    expect(requests).toHaveLength(0);
  });

  it('shows the signed-out state when a refreshed token is refused too', async () => {
    serve(() => apiError(401, 'session_revoked', 'the session has been revoked'));
    const fetchToken = vi.fn(token);
    render(<PushrailEmbed baseUrl="https://x" fetchToken={fetchToken} />);
    await screen.findByText("You're signed out");
    expect(fetchToken).toHaveBeenCalledTimes(2);
    expect(screen.getByText(/It may have been revoked/)).toBeTruthy();
  });

  it('moves between tabs with the arrow keys (roving tabindex)', async () => {
    serve(() => undefined);
    render(<PushrailEmbed baseUrl="https://x" fetchToken={token} />);
    const first = await screen.findByRole('tab', { name: 'Destinations' });
    expect(first.getAttribute('tabindex')).toBe('0');
    first.focus();
    fireEvent.keyDown(first, { key: 'ArrowLeft' });
    const last = screen.getByRole('tab', { name: 'Audit log' });
    await waitFor(() => {
      expect(last.getAttribute('aria-selected')).toBe('true');
    });
    expect(document.activeElement).toBe(last);
    expect(first.getAttribute('tabindex')).toBe('-1');
    fireEvent.keyDown(last, { key: 'Home' });
    await waitFor(() => {
      expect(first.getAttribute('aria-selected')).toBe('true');
    });
    const panel = screen.getByRole('tabpanel');
    expect(panel.getAttribute('aria-labelledby')).toBe(first.id);
  });

  it('creates a credential with write-only inputs and never renders the secret back', async () => {
    serve((method, path, body) =>
      method === 'POST' && path === '/credentials'
        ? json(201, { id: 'cred_1', name: (body as { name: string }).name, kind: 'bearer', created_at: '2026-01-01T00:00:00Z', rotated_at: null, fingerprint: 'fp_1' })
        : undefined,
    );
    const { container } = render(<PushrailEmbed baseUrl="https://x" fetchToken={token} initialTab="credentials" />);
    const [add] = await screen.findAllByRole('button', { name: 'Add credential' });
    if (add) fireEvent.click(add);
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'API token' } });
    fireEvent.change(screen.getByLabelText('Kind'), { target: { value: 'bearer' } });
    const input = screen.getByLabelText<HTMLInputElement>('Token');
    expect(input.type).toBe('password');
    fireEvent.change(input, { target: { value: 's3cr3t-value' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save credential' }));
    await screen.findByText(/“API token” saved/);
    expect(requests.find((r) => r.method === 'POST')?.body).toEqual({ name: 'API token', kind: 'bearer', secret: { token: 's3cr3t-value' } });
    expect(container.innerHTML).not.toContain('s3cr3t-value');
  });

  it('shows the IAM role setup from the API for an aws_role credential, with Copy buttons', async () => {
    serve((method, path, body) => {
      if (method === 'GET' && path === '/destination-types') return json(200, [webhookType, sqsType]);
      if (method === 'GET' && path === '/aws-role') return json(200, awsRole);
      if (method === 'POST' && path === '/credentials') {
        return json(201, {
          id: 'cred_r', name: (body as { name: string }).name, kind: 'aws_role', created_at: '2026-01-01T00:00:00Z',
          rotated_at: null, fingerprint: 'arn:aws:iam::210987654321:role/pushrail · fp',
        });
      }
      return undefined;
    });
    const writeText = vi.fn((_text: string) => Promise.resolve());
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    try {
      render(<PushrailEmbed baseUrl="https://x" fetchToken={token} initialTab="credentials" />);
      const [add] = await screen.findAllByRole('button', { name: 'Add credential' });
      if (add) fireEvent.click(add);
      fireEvent.change(await screen.findByLabelText('Name'), { target: { value: 'Orders queue role' } });
      expect(screen.getByRole<HTMLOptionElement>('option', { name: 'AWS IAM role' }).value).toBe('aws_role');
      expect(requests.some((r) => r.path === '/embed/v1/aws-role')).toBe(false); // only asked for when chosen
      fireEvent.change(screen.getByLabelText('Kind'), { target: { value: 'aws_role' } });

      screen.getByText('Create the role in your AWS account');
      await screen.findByText(EXTERNAL_ID);
      const card = screen.getByText('Create the role in your AWS account').closest('.pr-card');
      const values = [...(card?.querySelectorAll('dl dd code') ?? [])].map((code) => code.textContent);
      expect(values).toEqual(['123456789012', EXTERNAL_ID]);
      const policy = screen.getByLabelText('Trust policy', { exact: true });
      expect(policy.tagName).toBe('PRE');
      expect(policy.textContent).toBe(POLICY_TEXT);
      // The steps name the account, and the permission SQS needs.
      const steps = card?.querySelector('ol');
      expect(steps?.querySelectorAll('li')).toHaveLength(3);
      expect(steps?.textContent).toContain('Another AWS account');
      expect(steps?.textContent).toContain('123456789012');
      expect(steps?.textContent).toContain('sqs:SendMessage for Amazon SQS');

      fireEvent.click(screen.getByRole('button', { name: 'Copy external ID' }));
      const copied = await screen.findByText('Copied');
      expect(copied.getAttribute('aria-live')).toBe('polite');
      expect(writeText).toHaveBeenCalledWith(EXTERNAL_ID);
      fireEvent.click(screen.getByRole('button', { name: 'Copy trust policy' }));
      await waitFor(() => {
        expect(writeText).toHaveBeenLastCalledWith(POLICY_TEXT);
      });

      // Without a clipboard (an insecure origin): the value is selected, and the customer told.
      Object.defineProperty(navigator, 'clipboard', { value: undefined, configurable: true });
      fireEvent.click(screen.getByRole('button', { name: 'Copy AWS account ID' }));
      await screen.findByText(/Couldn't copy here: the text is selected/);
      expect(window.getSelection()?.toString()).toBe('123456789012');

      // A role ARN is no secret (it is the fingerprint): a text field the customer can check.
      expect(screen.getByLabelText<HTMLInputElement>('Role ARN').type).toBe('text');
      fireEvent.change(screen.getByLabelText('Role ARN'), { target: { value: 'arn:aws:iam::210987654321:role/pushrail' } });
      fireEvent.click(screen.getByRole('button', { name: 'Save credential' }));
      await screen.findByText(/“Orders queue role” saved/);
      expect(requests.find((r) => r.method === 'POST')?.body).toEqual({
        name: 'Orders queue role', kind: 'aws_role', secret: { role_arn: 'arn:aws:iam::210987654321:role/pushrail' },
      });
      expect(requests.filter((r) => r.path === '/embed/v1/aws-role')).toHaveLength(1);
    } finally {
      Reflect.deleteProperty(navigator, 'clipboard');
    }
  });

  it('warns when the deployment can’t assume roles (409) and disables saving that kind', async () => {
    serve((method, path) => {
      if (method === 'GET' && path === '/destination-types') return json(200, [sqsType]);
      if (method === 'GET' && path === '/aws-role') return apiError(409, 'aws_roles_unavailable', ROLES_UNAVAILABLE);
      return undefined;
    });
    render(<PushrailEmbed baseUrl="https://x" fetchToken={token} initialTab="credentials" />);
    const [add] = await screen.findAllByRole('button', { name: 'Add credential' });
    if (add) fireEvent.click(add);
    fireEvent.change(await screen.findByLabelText('Name'), { target: { value: 'Role' } });
    fireEvent.change(screen.getByLabelText('Kind'), { target: { value: 'aws_role' } });

    const message = await screen.findByText(ROLES_UNAVAILABLE);
    const notice = message.closest('.pr-notice');
    expect(notice?.classList.contains('pr-notice-warning')).toBe(true);
    expect(notice?.textContent).toContain("IAM roles aren't available");
    const save = screen.getByRole<HTMLButtonElement>('button', { name: 'Save credential' });
    expect(save.disabled).toBe(true);
    // The disabled button says why.
    const describedBy = save.getAttribute('aria-describedby') ?? '';
    expect(document.getElementById(describedBy)?.textContent).toContain(ROLES_UNAVAILABLE);
    expect(screen.queryByLabelText('Role ARN')).toBeNull();
    expect(screen.queryByText('Create the role in your AWS account')).toBeNull();
    expect(save.form).not.toBeNull();
    if (save.form) fireEvent.submit(save.form);
    expect(requests.some((r) => r.method === 'POST')).toBe(false);
    // One answer is enough: a 409 is not retried.
    expect(requests.filter((r) => r.path === '/embed/v1/aws-role')).toHaveLength(1);

    // The way out the message suggests.
    fireEvent.click(screen.getByRole('button', { name: 'Use an AWS access key instead' }));
    expect(screen.getByLabelText<HTMLSelectElement>('Kind').value).toBe('aws_access_key');
    expect(screen.getByRole<HTMLButtonElement>('button', { name: 'Save credential' }).disabled).toBe(false);
    expect(screen.queryByText(ROLES_UNAVAILABLE)).toBeNull();
    screen.getByLabelText('Access key id');
  });

  it('reminds of the external id when rotating an aws_role credential', async () => {
    serve((method, path, body) => {
      if (method === 'GET' && path === '/destination-types') return json(200, [sqsType]);
      if (method === 'GET' && path === '/aws-role') return json(200, awsRole);
      if (method === 'GET' && path === '/credentials') {
        return json(200, {
          items: [
            {
              id: 'cred_r', name: 'Queue role', kind: 'aws_role', created_at: '2026-01-01T00:00:00Z', rotated_at: null,
              fingerprint: 'arn:aws:iam::210987654321:role/pushrail · fp',
            },
          ],
        });
      }
      if (method === 'POST' && path === '/credentials/cred_r/rotate') {
        return json(200, { id: 'cred_r', name: 'Queue role', kind: 'aws_role', rotated_at: '2026-01-02T00:00:00Z', body });
      }
      return undefined;
    });
    render(<PushrailEmbed baseUrl="https://x" fetchToken={token} initialTab="credentials" />);
    fireEvent.click(await screen.findByRole('button', { name: 'Rotate Queue role' }));
    const code = await screen.findByText(EXTERNAL_ID);
    expect(code.closest('dd')?.querySelector('button')?.getAttribute('aria-label')).toBe('Copy external ID');
    expect(screen.getByText(/must name AWS account/).textContent).toContain('123456789012');
    fireEvent.change(screen.getByLabelText('Role ARN'), { target: { value: 'arn:aws:iam::210987654321:role/pushrail-2' } });
    fireEvent.click(screen.getByRole('button', { name: 'Rotate credential' }));
    await screen.findByText(/“Queue role” rotated/);
    expect(requests.find((r) => r.method === 'POST')?.body).toEqual({ secret: { role_arn: 'arn:aws:iam::210987654321:role/pushrail-2' } });
  });
});
