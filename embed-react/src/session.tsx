/**
 * `<PushrailProvider>`: one customer session (token fetch, background refresh, 401 retry) and the
 * query cache the screens and the headless hooks share. `<PushrailEmbed>` sits on it too.
 */

import { QueryClient } from '@tanstack/react-query';
import { createContext, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';

import { ApiClient, PushrailApiError } from './api.js';
import { SignedOutError, TokenManager, type AuthState, type SignedOutReason } from './token.js';

export interface PushrailProviderProps {
  /** Where Pushrail answers, e.g. `https://events.example.com`; requests go to `${baseUrl}/embed/v1/...`. */
  baseUrl: string;
  /**
   * Returns a session token for the signed-in customer, minted by your backend with
   * `POST /v1/sessions`. Called on mount, about a minute before each token expires, and when
   * Pushrail refuses a token. Reject it (e.g. your backend answers 401/403) to sign the session out.
   */
  fetchToken: () => Promise<string>;
  /** Called when the session ends: `fetchToken` rejected, or Pushrail refused a fresh token. */
  onSignedOut?: (reason: SignedOutReason, message: string) => void;
  children?: ReactNode;
}

export interface PushrailSession {
  /** The typed embed API client, for calls no hook covers. */
  api: ApiClient;
  /** `loading` until the first token, `ready`, or `signed_out` with why. */
  auth: AuthState;
  /** Starts over after a sign-out (what the embed's "Try again" button does). */
  retry: () => void;
  /** The session's own query cache (the hooks use it, whatever QueryClientProvider surrounds them). */
  queryClient: QueryClient;
}

const SessionContext = createContext<PushrailSession | null>(null);

/** The surrounding `<PushrailProvider>`'s session; throws outside one. */
export function usePushrailSession(): PushrailSession {
  const session = useContext(SessionContext);
  if (!session) throw new Error('Pushrail hooks must be used inside <PushrailProvider> (or <PushrailEmbed>).');
  return session;
}

function retryable(failureCount: number, error: unknown): boolean {
  if (error instanceof SignedOutError) return false;
  if (error instanceof PushrailApiError && error.status >= 400 && error.status < 500 && error.status !== 429) {
    return false;
  }
  return failureCount < 2;
}

export function PushrailProvider({ baseUrl, fetchToken, onSignedOut, children }: PushrailProviderProps) {
  // The latest callbacks, without restarting the session when the vendor passes new closures.
  const [tokens] = useState(() => new TokenManager({ fetchToken }));
  const onSignedOutRef = useRef(onSignedOut);
  useEffect(() => {
    tokens.setFetchToken(fetchToken);
    onSignedOutRef.current = onSignedOut;
  });
  const [queryClient] = useState(
    () =>
      new QueryClient({
        defaultOptions: {
          // Cached data shows at once and is revalidated on every mount: a tab switch notices a revoked session.
          queries: { retry: retryable, refetchOnWindowFocus: true, staleTime: 0 },
          mutations: { retry: false },
        },
      }),
  );
  const api = useMemo(() => new ApiClient({ baseUrl, tokens }), [baseUrl, tokens]);
  const auth: AuthState = useSyncExternalStore(tokens.subscribe, tokens.getState, tokens.getState);

  useEffect(() => {
    // The client is the provider's own: QueryClientProvider would mount it, the hooks pass it directly.
    queryClient.mount();
    tokens.start();
    return () => {
      tokens.stop();
      queryClient.unmount();
    };
  }, [tokens, queryClient]);

  const previous = useRef(auth.status);
  useEffect(() => {
    const before = previous.current;
    previous.current = auth.status;
    if (auth.status === 'signed_out') {
      // Nothing of a signed-out customer stays on screen or in memory.
      queryClient.cancelQueries().catch(() => undefined);
      queryClient.clear();
      onSignedOutRef.current?.(auth.reason, auth.message);
    } else if (auth.status === 'ready' && before === 'signed_out') {
      // Back after "Try again": what failed for want of a session asks again.
      queryClient.refetchQueries({ predicate: (query) => query.state.status === 'error' }).catch(() => undefined);
    }
  }, [auth, queryClient]);

  const session = useMemo<PushrailSession>(
    () => ({
      api,
      auth,
      queryClient,
      retry: () => {
        tokens.retry().catch(() => undefined);
      },
    }),
    [api, auth, queryClient, tokens],
  );

  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}
