/** The embed API of API.md, typed, with token handling: one retry after a refresh on 401. */

import { SignedOutError, type TokenManager } from './token.js';

export type JsonSchema = {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  writeOnly?: boolean;
  readOnly?: boolean;
  [keyword: string]: unknown;
};

export interface CredentialKind {
  kind: string;
  schema: JsonSchema | null;
}

export interface DestinationType {
  type: string;
  name: string;
  description: string;
  config_schema: JsonSchema;
  credential_schema?: JsonSchema | null;
  credential_kinds?: CredentialKind[];
  credential_required?: boolean;
}

export interface Destination {
  id: string;
  type: string;
  name: string;
  config: Record<string, unknown>;
  credential_id: string | null;
  event_types: string[];
  enabled: boolean;
  /** Why Pushrail disabled it (every delivery failing for the host's window); null otherwise. */
  disabled_reason?: string | null;
  /** `open` after too many batches in a row delivered nothing: its queue waits, one delivery at a time probes it. */
  circuit?: 'open' | 'closed';
  /** While the circuit is open: when the next probe may go. */
  next_probe_at?: string | null;
  created_at: string;
  updated_at: string;
}

export interface DestinationInput {
  type?: string;
  name?: string;
  config?: Record<string, unknown>;
  credential_id?: string | null;
  event_types?: string[];
  enabled?: boolean;
}

export interface Credential {
  id: string;
  name: string;
  kind: string;
  created_at: string;
  rotated_at: string | null;
  fingerprint: string;
}

/**
 * What a customer needs to create an IAM role Pushrail may assume (credential kind `aws_role`):
 * the deployment's AWS account, the customer's own external id, and the trust policy naming both.
 */
export interface AwsRoleTrust {
  /** The deployment's AWS account id, the principal the role must trust. */
  account_id: string;
  /** The customer's external id (`pushrail-<32 hex>`), which the trust policy must require. */
  external_id: string;
  /** `arn:aws:iam::<account_id>:root` (or its partition's equivalent). */
  principal: string;
  trust_policy: AwsTrustPolicy;
}

export interface AwsTrustPolicy {
  Version: string;
  Statement: {
    Effect: string;
    Principal: { AWS: string };
    Action: string;
    Condition: { StringEquals: { 'sts:ExternalId': string } };
  }[];
  [key: string]: unknown;
}

export type DeliveryStatus = 'pending' | 'delivering' | 'succeeded' | 'failed';
export type AttemptOutcome = 'succeeded' | 'retryable_error' | 'permanent_error';

export interface Attempt {
  n: number;
  started_at: string;
  duration_ms: number;
  outcome: AttemptOutcome;
  status_code?: number | null;
  error?: string | null;
  response_excerpt?: string | null;
}

export interface Delivery {
  id: string;
  event_id: string;
  event_type: string;
  destination_id: string;
  status: DeliveryStatus;
  attempt_count: number;
  next_attempt_at: string | null;
  /** `open_circuit` while it waits, unattempted, on its destination's open circuit. */
  waiting_on?: 'open_circuit';
  created_at: string;
  updated_at: string;
  /** The event's payload, the JSON the vendor published; in a delivery's detail (`getDelivery`) only. */
  payload?: unknown;
  attempts?: Attempt[];
}

export interface DeliveryFilters {
  status?: DeliveryStatus | '';
  destination_id?: string;
  event_type?: string;
  since?: string;
  until?: string;
}

/** One entry of the customer's own audit trail. */
export interface AuditEntry {
  at: string;
  /** Who: `session:<session id>` (a session of this customer), `tenant:<id>` (the vendor's operator). */
  actor: string;
  /** What: `destination.create`, `credential.rotate`, `replay.create`, `session.issue`, … */
  action: string;
  /** The id of what it was done to. */
  target: string;
}

export interface AuditFilters {
  /** One action (`credential.rotate`) or a family of them (`credential.*`). */
  action?: string;
  /** RFC 3339; from this time on. */
  since?: string;
  /** RFC 3339; before this time. */
  until?: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface TestResult {
  delivery_id?: string;
  attempt: Attempt | null;
}

export type ReplayRequest =
  | { delivery_id: string }
  | { since: string; until: string; destination_id?: string; status?: 'failed' | 'succeeded' };

export interface ReplayResult {
  replay_id: string;
  deliveries: number;
}

export interface FieldError {
  field: string;
  message: string;
}

/** A non-2xx answer (or no answer at all: `status` 0, code `network_error`). */
export class PushrailApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: FieldError[];

  constructor(status: number, code: string, message: string, details: FieldError[] = []) {
    super(message);
    this.name = 'PushrailApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

async function errorFrom(response: Response): Promise<PushrailApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page): fall back to the status line.
  }
  const error = (body as { error?: Partial<PushrailApiError> } | null)?.error;
  const details = Array.isArray(error?.details)
    ? error.details.filter(
        (d): d is FieldError => typeof d.field === 'string' && typeof d.message === 'string',
      )
    : [];
  return new PushrailApiError(
    response.status,
    typeof error?.code === 'string' ? error.code : `http_${String(response.status)}`,
    typeof error?.message === 'string' && error.message
      ? error.message
      : `The request failed (HTTP ${String(response.status)}).`,
    details,
  );
}

export interface ApiClientOptions {
  baseUrl: string;
  tokens: TokenManager;
  fetch?: typeof fetch;
}

type Query = Record<string, string | number | undefined | null>;

export class ApiClient {
  private readonly base: string;
  private readonly tokens: TokenManager;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ApiClientOptions) {
    this.base = `${options.baseUrl.replace(/\/+$/, '')}/embed/v1`;
    this.tokens = options.tokens;
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  async request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
    let url = this.base + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
      }
      const text = params.toString();
      if (text) url += `?${text}`;
    }
    let token = await this.tokens.getToken();
    let response = await this.send(method, url, token, body);
    if (response.status === 401) {
      token = await this.tokens.handleUnauthorized(token);
      response = await this.send(method, url, token, body);
      if (response.status === 401) {
        const error = await errorFrom(response);
        this.tokens.markRefused(error.message);
        throw new SignedOutError('token_refused', error.message);
      }
    }
    if (!response.ok) throw await errorFrom(response);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private async send(method: string, url: string, token: string, body: unknown): Promise<Response> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${token}`,
      Accept: 'application/json',
    };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      return await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
      });
    } catch {
      throw new PushrailApiError(0, 'network_error', 'Pushrail could not be reached. Check your connection and try again.');
    }
  }

  listTypes(): Promise<DestinationType[]> {
    return this.request('GET', '/destination-types');
  }

  async listDestinations(): Promise<Destination[]> {
    return (await this.request<{ items: Destination[] }>('GET', '/destinations')).items;
  }

  createDestination(input: DestinationInput): Promise<Destination> {
    return this.request('POST', '/destinations', input);
  }

  updateDestination(id: string, input: DestinationInput): Promise<Destination> {
    return this.request('PATCH', `/destinations/${encodeURIComponent(id)}`, input);
  }

  deleteDestination(id: string): Promise<void> {
    return this.request('DELETE', `/destinations/${encodeURIComponent(id)}`);
  }

  testDestination(id: string): Promise<TestResult> {
    return this.request('POST', `/destinations/${encodeURIComponent(id)}/test`, {});
  }

  async listCredentials(): Promise<Credential[]> {
    return (await this.request<{ items: Credential[] }>('GET', '/credentials')).items;
  }

  createCredential(input: { name: string; kind: string; secret: Record<string, unknown> }): Promise<Credential> {
    return this.request('POST', '/credentials', input);
  }

  rotateCredential(id: string, secret: Record<string, unknown>): Promise<Credential> {
    return this.request('POST', `/credentials/${encodeURIComponent(id)}/rotate`, { secret });
  }

  deleteCredential(id: string): Promise<void> {
    return this.request('DELETE', `/credentials/${encodeURIComponent(id)}`);
  }

  /**
   * The deployment's account, the customer's external id and the trust policy for an `aws_role`
   * credential. A 409 `aws_roles_unavailable` when the deployment has no AWS keys of its own.
   */
  getAwsRole(): Promise<AwsRoleTrust> {
    return this.request('GET', '/aws-role');
  }

  listDeliveries(filters: DeliveryFilters, cursor?: string | null, limit = 25): Promise<Page<Delivery>> {
    return this.request('GET', '/deliveries', undefined, { ...filters, cursor, limit });
  }

  getDelivery(id: string): Promise<Delivery> {
    return this.request('GET', `/deliveries/${encodeURIComponent(id)}`);
  }

  /** The customer's own audit trail, newest first; `action`, `since` and `until` filter it. */
  listAudit(filters: AuditFilters, cursor?: string | null, limit = 25): Promise<Page<AuditEntry>> {
    return this.request('GET', '/audit', undefined, { ...filters, cursor, limit });
  }

  replay(request: ReplayRequest): Promise<ReplayResult> {
    return this.request('POST', '/replays', request);
  }
}
