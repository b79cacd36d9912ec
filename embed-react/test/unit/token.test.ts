import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ApiClient, PushrailApiError } from '../../src/api.js';
import { decodeJwtExp, SignedOutError, TokenManager } from '../../src/token.js';
import { apiError, json, jwt } from './helpers.js';

const T0 = new Date('2026-01-01T12:00:00Z').getTime();

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** A fetchToken that hands out fresh 15-minute tokens and records each call. */
function vendor(ttlSeconds = 900) {
  const issued: string[] = [];
  const fetchToken = vi.fn(() => {
    const token = jwt(ttlSeconds);
    issued.push(token);
    return Promise.resolve(token);
  });
  return { fetchToken, issued };
}

describe('decodeJwtExp', () => {
  it('reads exp in milliseconds', () => {
    expect(decodeJwtExp(jwt(900))).toBe(T0 + 900_000);
  });

  it('answers null for tokens without a readable exp', () => {
    expect(decodeJwtExp('opaque-token')).toBeNull();
    expect(decodeJwtExp('a.bm90IGpzb24.c')).toBeNull();
    expect(decodeJwtExp(`a.${Buffer.from('{"sub":"x"}').toString('base64url')}.c`)).toBeNull();
  });
});

describe('TokenManager', () => {
  it('fetches a token on start and refreshes it in the background 60 s before it expires', async () => {
    const { fetchToken, issued } = vendor(900);
    const tokens = new TokenManager({ fetchToken });
    tokens.start();
    await tokens.getToken(); // the start's fetch, in flight
    expect(tokens.getState().status).toBe('ready');
    expect(fetchToken).toHaveBeenCalledTimes(1);
    expect(tokens.nextRefreshIn()).toBe(840_000);
    await expect(tokens.getToken()).resolves.toBe(issued[0]);

    await vi.advanceTimersByTimeAsync(839_000);
    expect(fetchToken).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fetchToken).toHaveBeenCalledTimes(2);
    await expect(tokens.getToken()).resolves.toBe(issued[1]);
    // The next refresh is scheduled from the new token's expiry.
    expect(tokens.nextRefreshIn()).toBe(840_000);
    tokens.stop();
  });

  it('refreshes a short-lived token halfway through its life', async () => {
    const { fetchToken } = vendor(60);
    const tokens = new TokenManager({ fetchToken });
    await tokens.refresh();
    expect(tokens.nextRefreshIn()).toBe(30_000);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(fetchToken).toHaveBeenCalledTimes(2);
    tokens.stop();
  });

  it('fetches a new token for a request when the current one is about to expire', async () => {
    const { fetchToken, issued } = vendor(900);
    const tokens = new TokenManager({ fetchToken });
    await tokens.refresh();
    tokens.stop(); // no background refresh: e.g. the tab slept through it
    vi.setSystemTime(T0 + 897_000);
    await expect(tokens.getToken()).resolves.toBe(issued[1]);
    expect(fetchToken).toHaveBeenCalledTimes(2);
  });

  it('shares one fetchToken call between concurrent callers', async () => {
    const { fetchToken } = vendor();
    const tokens = new TokenManager({ fetchToken });
    const all = await Promise.all([tokens.getToken(), tokens.getToken(), tokens.refresh()]);
    expect(new Set(all).size).toBe(1);
    expect(fetchToken).toHaveBeenCalledTimes(1);
    tokens.stop();
  });

  it('signs out when fetchToken rejects, and can try again', async () => {
    const fetchToken = vi.fn<() => Promise<string>>().mockRejectedValueOnce(new Error('customer revoked'));
    const tokens = new TokenManager({ fetchToken });
    const seen: string[] = [];
    tokens.subscribe(() => seen.push(tokens.getState().status));
    tokens.start();
    await vi.waitFor(() => {
      expect(tokens.getState()).toEqual({ status: 'signed_out', reason: 'token_rejected', message: 'customer revoked' });
    });
    await expect(tokens.getToken()).rejects.toBeInstanceOf(SignedOutError);
    expect(fetchToken).toHaveBeenCalledTimes(1); // no hammering the vendor's backend

    fetchToken.mockResolvedValueOnce(jwt(900));
    await tokens.retry();
    expect(tokens.getState().status).toBe('ready');
    expect(seen).toEqual(['signed_out', 'loading', 'ready']);
    tokens.stop();
  });

  it('signs out when a background refresh is refused', async () => {
    const fetchToken = vi.fn<() => Promise<string>>().mockResolvedValueOnce(jwt(120)).mockRejectedValueOnce(new Error('no'));
    const tokens = new TokenManager({ fetchToken });
    await tokens.refresh();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(tokens.getState().status).toBe('signed_out');
  });

  it('treats an empty answer from fetchToken as a rejection', async () => {
    const tokens = new TokenManager({ fetchToken: () => Promise.resolve('') });
    await expect(tokens.refresh()).rejects.toBeInstanceOf(SignedOutError);
    expect(tokens.getState().status).toBe('signed_out');
  });
});

describe('ApiClient token handling', () => {
  function setup(responses: ((token: string) => Response)[]) {
    const { fetchToken, issued } = vendor();
    const tokens = new TokenManager({ fetchToken });
    const seenTokens: string[] = [];
    const fetchMock = vi.fn((_url: string | URL | Request, init?: RequestInit) => {
      const auth = new Headers(init?.headers).get('Authorization') ?? '';
      const token = auth.replace(/^Bearer /, '');
      seenTokens.push(token);
      const next = responses.shift();
      if (!next) throw new Error('unexpected request');
      return Promise.resolve(next(token));
    });
    const api = new ApiClient({ baseUrl: 'https://pushrail.test/', tokens, fetch: fetchMock });
    return { api, tokens, fetchToken, issued, fetchMock, seenTokens };
  }

  it('sends the bearer token to the embed API', async () => {
    const { api, seenTokens, issued, fetchMock } = setup([() => json(200, { items: [] })]);
    await expect(api.listDestinations()).resolves.toEqual([]);
    expect(fetchMock.mock.calls[0]?.[0]).toBe('https://pushrail.test/embed/v1/destinations');
    expect(seenTokens).toEqual([issued[0]]);
  });

  it('on 401 refreshes the token and retries the request once', async () => {
    const { api, fetchToken, seenTokens, issued, tokens } = setup([
      () => apiError(401, 'session_revoked', 'the session has been revoked'),
      () => json(200, { items: [{ id: 'dst_1' }] }),
    ]);
    await expect(api.listDestinations()).resolves.toEqual([{ id: 'dst_1' }]);
    expect(fetchToken).toHaveBeenCalledTimes(2);
    expect(seenTokens).toEqual([issued[0], issued[1]]);
    expect(tokens.getState().status).toBe('ready');
  });

  it('signs out when the refreshed token is refused too, without retrying again', async () => {
    const { api, fetchMock, tokens } = setup([
      () => apiError(401, 'invalid_token', 'the session does not exist'),
      () => apiError(401, 'invalid_token', 'the session does not exist'),
    ]);
    await expect(api.listDestinations()).rejects.toMatchObject({ name: 'SignedOutError', reason: 'token_refused' });
    expect(fetchMock).toHaveBeenCalledTimes(2);
    expect(tokens.getState()).toMatchObject({ status: 'signed_out', reason: 'token_refused' });
  });

  it('signs out when the vendor refuses the refresh after a 401', async () => {
    const fetchToken = vi.fn<() => Promise<string>>().mockResolvedValueOnce(jwt(900)).mockRejectedValueOnce(new Error('403 from vendor'));
    const tokens = new TokenManager({ fetchToken });
    const fetchMock = vi.fn(() => Promise.resolve(apiError(401, 'session_revoked', 'the session has been revoked')));
    const api = new ApiClient({ baseUrl: 'https://pushrail.test', tokens, fetch: fetchMock });
    await expect(api.listTypes()).rejects.toMatchObject({ name: 'SignedOutError', reason: 'token_rejected' });
    expect(fetchMock).toHaveBeenCalledTimes(1); // nothing to retry with
    expect(tokens.getState()).toEqual({ status: 'signed_out', reason: 'token_rejected', message: '403 from vendor' });
  });

  it('refreshes once for concurrent requests refused with the same token', async () => {
    const { api, fetchToken } = setup([
      () => apiError(401, 'expired', 'expired'),
      () => apiError(401, 'expired', 'expired'),
      () => json(200, { items: [] }),
      () => json(200, { items: [] }),
    ]);
    await Promise.all([api.listDestinations(), api.listCredentials()]);
    expect(fetchToken).toHaveBeenCalledTimes(2); // the first token, then one refresh
  });

  it('turns error bodies into PushrailApiError with field details', async () => {
    const { api } = setup([
      () =>
        apiError(422, 'validation_failed', 'config.url: does not match', [
          { field: 'config.url', message: 'does not match "^https?://"' },
        ]),
    ]);
    const error = await api.createDestination({ type: 'webhook', name: 'x', config: { url: 'ftp://x' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PushrailApiError);
    expect(error).toMatchObject({
      status: 422,
      code: 'validation_failed',
      details: [{ field: 'config.url', message: 'does not match "^https?://"' }],
    });
  });

  it('reports a network failure as a PushrailApiError', async () => {
    const { api } = setup([
      () => {
        throw new TypeError('Failed to fetch');
      },
    ]);
    await expect(api.listTypes()).rejects.toMatchObject({ code: 'network_error', status: 0 });
  });
});
