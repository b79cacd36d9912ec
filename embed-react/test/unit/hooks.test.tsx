/** The headless hooks against a fake embed API: a list, a mutation that refreshes it, and a 401's token refresh. */

import { act, cleanup, render, renderHook, screen, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  PushrailProvider,
  useCreateDestination,
  useDeliveries,
  useDestination,
  useDestinations,
  usePushrailSession,
  useReplay,
  type Destination,
} from '../../src/index.js';
import { apiError, json, jwt } from './helpers.js';

const BASE = 'https://pushrail.test';

function destination(id: string, name: string): Destination {
  return {
    id,
    type: 'webhook',
    name,
    config: { url: `https://a.example/${id}` },
    credential_id: null,
    event_types: ['order.*'],
    enabled: true,
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
  };
}

let requests: { method: string; path: string; auth: string | null }[] = [];

/** A fake API holding a list of destinations; `refuse` answers 401 to the tokens it names. */
function serve(refuse = new Set<string>()) {
  requests = [];
  const destinations = [destination('dst_1', 'Orders')];
  vi.stubGlobal(
    'fetch',
    vi.fn((input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const method = init?.method ?? 'GET';
      const auth = new Headers(init?.headers).get('Authorization');
      requests.push({ method, path: url.pathname + url.search, auth });
      const path = url.pathname.replace(/^\/embed\/v1/, '');
      if (auth && refuse.has(auth.replace(/^Bearer /, ''))) {
        return Promise.resolve(apiError(401, 'unauthorized', 'The session token expired.'));
      }
      if (method === 'GET' && path === '/destinations') return Promise.resolve(json(200, { items: [...destinations] }));
      if (method === 'POST' && path === '/destinations') {
        const input = JSON.parse(typeof init?.body === 'string' ? init.body : '{}') as { name: string };
        const created = destination(`dst_${String(destinations.length + 1)}`, input.name);
        destinations.push(created);
        return Promise.resolve(json(201, created));
      }
      if (method === 'GET' && path === '/deliveries') {
        return Promise.resolve(json(200, { items: [], next_cursor: null }));
      }
      if (method === 'POST' && path === '/replays') return Promise.resolve(json(201, { replay_id: 'rpl_1', deliveries: 3 }));
      return Promise.resolve(apiError(404, 'not_found', 'route not found'));
    }),
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function wrapper(fetchToken: () => Promise<string>) {
  return function Wrapper({ children }: { children: ReactNode }) {
    return (
      <PushrailProvider baseUrl={BASE} fetchToken={fetchToken}>
        {children}
      </PushrailProvider>
    );
  };
}

describe('headless hooks', () => {
  it('lists destinations, and one by id, through the session', async () => {
    serve();
    const fetchToken = vi.fn(() => Promise.resolve(jwt(900)));
    const { result } = renderHook(() => ({ list: useDestinations(), one: useDestination('dst_1') }), {
      wrapper: wrapper(fetchToken),
    });
    await waitFor(() => {
      expect(result.current.list.data?.map((d) => d.name)).toEqual(['Orders']);
    });
    expect(result.current.one.data?.name).toBe('Orders');
    expect(fetchToken).toHaveBeenCalledTimes(1);
    expect(requests.every((r) => r.auth?.startsWith('Bearer ey'))).toBe(true);
  });

  it('refetches the list after a create', async () => {
    serve();
    const { result } = renderHook(() => ({ list: useDestinations(), create: useCreateDestination() }), {
      wrapper: wrapper(() => Promise.resolve(jwt(900))),
    });
    await waitFor(() => {
      expect(result.current.list.data).toHaveLength(1);
    });
    await act(async () => {
      await result.current.create.mutateAsync({ type: 'webhook', name: 'Refunds', config: { url: 'https://a.example/r' } });
    });
    await waitFor(() => {
      expect(result.current.list.data?.map((d) => d.name)).toEqual(['Orders', 'Refunds']);
    });
    expect(requests.filter((r) => r.method === 'GET' && r.path === '/embed/v1/destinations')).toHaveLength(2);
  });

  it('fetches a fresh token on a 401 and retries the request with it', async () => {
    const first = jwt(900);
    const second = jwt(900);
    serve(new Set([first]));
    const fetchToken = vi.fn().mockResolvedValueOnce(first).mockResolvedValueOnce(second);
    const { result } = renderHook(() => useDestinations(), { wrapper: wrapper(fetchToken) });
    await waitFor(() => {
      expect(result.current.data).toHaveLength(1);
    });
    expect(fetchToken).toHaveBeenCalledTimes(2);
    expect(requests.map((r) => r.auth)).toEqual([`Bearer ${first}`, `Bearer ${second}`]);
  });

  it('signs out when the token callback rejects, and says why', async () => {
    serve();
    const onSignedOut = vi.fn();
    function Status() {
      const { auth } = usePushrailSession();
      const list = useDestinations();
      return (
        <p>
          {auth.status} {list.isError ? 'no list' : ''}
        </p>
      );
    }
    render(
      <PushrailProvider baseUrl={BASE} fetchToken={() => Promise.reject(new Error('Not allowed'))} onSignedOut={onSignedOut}>
        <Status />
      </PushrailProvider>,
    );
    await screen.findByText(/signed_out/);
    expect(onSignedOut).toHaveBeenCalledWith('token_rejected', 'Not allowed');
    expect(requests).toHaveLength(0);
  });

  it('pages the delivery log with filters and replays a window', async () => {
    serve();
    const { result } = renderHook(() => ({ log: useDeliveries({ status: 'failed' }, { pageSize: 10 }), replay: useReplay() }), {
      wrapper: wrapper(() => Promise.resolve(jwt(900))),
    });
    await waitFor(() => {
      expect(result.current.log.data?.pages).toHaveLength(1);
    });
    expect(requests.at(-1)?.path).toBe('/embed/v1/deliveries?status=failed&limit=10');
    let answer: { deliveries: number } | undefined;
    await act(async () => {
      answer = await result.current.replay.mutateAsync({ since: '2026-01-01T00:00:00Z', until: '2026-01-02T00:00:00Z' });
    });
    expect(answer?.deliveries).toBe(3);
    // The log refetches after a replay.
    await waitFor(() => {
      expect(requests.filter((r) => r.path.startsWith('/embed/v1/deliveries'))).toHaveLength(2);
    });
  });
});
