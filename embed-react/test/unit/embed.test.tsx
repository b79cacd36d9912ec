/** The component against a fake embed API: screens, error mapping, sign-out, keyboard tabs. */

import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { PushrailEmbed } from '../../src/PushrailEmbed.js';
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
    const last = screen.getByRole('tab', { name: 'Replay' });
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
});
