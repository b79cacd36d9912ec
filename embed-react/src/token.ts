/**
 * Session tokens: fetched from the vendor's callback, refreshed in the background shortly before
 * they expire and whenever the API refuses one. Framework-free so it can be tested with fake timers.
 */

/** Why the embed stopped: the vendor's backend refused to mint, or Pushrail refused a fresh token. */
export type SignedOutReason = 'token_rejected' | 'token_refused';

export type AuthState =
  | { status: 'loading' }
  | { status: 'ready' }
  | { status: 'signed_out'; reason: SignedOutReason; message: string };

export class SignedOutError extends Error {
  readonly reason: SignedOutReason;

  constructor(reason: SignedOutReason, message: string) {
    super(message);
    this.name = 'SignedOutError';
    this.reason = reason;
  }
}

export interface TokenManagerOptions {
  fetchToken: () => Promise<string>;
  /** Refresh this long before `exp`. Default 60 s (halved for tokens living less than twice that). */
  refreshLeadMs?: number;
  /** A token this close to `exp` is not used for a new request. Default 5 s (a quarter of shorter lives). */
  skewMs?: number;
  now?: () => number;
}

/** The `exp` claim of a JWT, in milliseconds since the epoch; null when absent or unreadable. */
export function decodeJwtExp(token: string): number | null {
  const payload = decodeJwtPayload(token);
  const exp = payload?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
}

function decodeJwtPayload(token: string): Record<string, unknown> | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const binary = atob(padded);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error && error.message) return error.message;
  if (typeof error === 'string' && error) return error;
  return 'The session could not be renewed.';
}

export class TokenManager {
  private fetchToken: () => Promise<string>;
  private readonly leadMs: number;
  private readonly skewMs: number;
  private readonly now: () => number;

  private token: string | null = null;
  private expiresAt: number | null = null;
  private refreshAt: number | null = null;
  /** This token's margin before `exp`: the configured skew, or a quarter of its life if shorter. */
  private margin = 0;
  private inflight: Promise<string> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private state: AuthState = { status: 'loading' };
  private readonly listeners = new Set<() => void>();
  private stopped = false;

  constructor(options: TokenManagerOptions) {
    this.fetchToken = options.fetchToken;
    this.leadMs = options.refreshLeadMs ?? 60_000;
    this.skewMs = options.skewMs ?? 5_000;
    this.now = options.now ?? Date.now;
  }

  getState = (): AuthState => this.state;

  /** Swaps the callback (a re-rendered parent passes a new closure) without touching the session. */
  setFetchToken(fetchToken: () => Promise<string>): void {
    this.fetchToken = fetchToken;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** A token fit for a request now: the current one, or a fresh one. */
  async getToken(): Promise<string> {
    if (this.state.status === 'signed_out') {
      throw new SignedOutError(this.state.reason, this.state.message);
    }
    if (this.inflight) return this.inflight;
    if (this.token && this.fresh()) return this.token;
    return this.refresh();
  }

  private fresh(): boolean {
    return this.expiresAt === null || this.expiresAt - this.margin > this.now();
  }

  /**
   * The API answered 401 to a request made with `used`. Fetches a new token unless one arrived
   * meanwhile; the caller retries once with the answer.
   */
  async handleUnauthorized(used: string): Promise<string> {
    if (this.inflight) return this.inflight;
    if (this.token && this.token !== used && this.state.status === 'ready') return this.token;
    return this.refresh();
  }

  /** A token fresh from the vendor was refused too: the session is over. */
  markRefused(message: string): void {
    this.signOut('token_refused', message);
  }

  /** Fetches a new token; concurrent callers share one call to `fetchToken`. */
  refresh(): Promise<string> {
    if (this.inflight) return this.inflight;
    const run = (async () => {
      let token: string;
      try {
        token = await this.fetchToken();
        if (typeof token !== 'string' || token.length === 0) {
          throw new Error('fetchToken resolved without a token.');
        }
      } catch (error) {
        this.signOut('token_rejected', describe(error));
        throw new SignedOutError('token_rejected', describe(error));
      } finally {
        this.inflight = null;
      }
      if (this.stopped) return token;
      this.token = token;
      this.expiresAt = decodeJwtExp(token);
      this.margin = this.expiresAt === null ? 0 : Math.min(this.skewMs, Math.max(0, (this.expiresAt - this.now()) / 4));
      this.schedule();
      this.setState({ status: 'ready' });
      return token;
    })();
    this.inflight = run;
    // Background refreshes have no caller to observe a failure; the state change reports it.
    run.catch(() => undefined);
    return run;
  }

  /** Starts over after a sign-out (the "Try again" button). */
  retry(): Promise<string> {
    this.clearTimer();
    this.token = null;
    this.expiresAt = null;
    this.setState({ status: 'loading' });
    return this.refresh();
  }

  /** Fetches the first token, or resumes the schedule after `stop()` (React StrictMode remounts). */
  start(): void {
    this.stopped = false;
    if (this.state.status === 'signed_out') return;
    if (this.token && this.fresh()) {
      this.schedule();
      return;
    }
    this.refresh().catch(() => undefined);
  }

  /** Cancels the background refresh; a token still being fetched is dropped. */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
  }

  /** Milliseconds until the scheduled background refresh, or null (for tests and debugging). */
  nextRefreshIn(): number | null {
    if (this.refreshAt === null || this.timer === null) return null;
    return Math.max(0, this.refreshAt - this.now());
  }

  private schedule(): void {
    this.clearTimer();
    if (this.expiresAt === null || this.stopped) return;
    const now = this.now();
    // A token that lives less than twice the lead is refreshed halfway through its life.
    const lead = Math.min(this.leadMs, Math.max(0, (this.expiresAt - now) / 2));
    this.refreshAt = this.expiresAt - lead;
    const delay = Math.max(1_000, this.refreshAt - now);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refresh().catch(() => undefined);
    }, delay);
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private signOut(reason: SignedOutReason, message: string): void {
    this.clearTimer();
    this.token = null;
    this.expiresAt = null;
    this.setState({ status: 'signed_out', reason, message });
  }

  private setState(state: AuthState): void {
    const previous = this.state;
    if (previous.status === state.status && state.status !== 'signed_out') return;
    this.state = state;
    for (const listener of this.listeners) listener();
  }
}
