/** Dates, durations and names as the screens show them. */

import type { CredentialKind, Destination, DestinationType } from './api.js';
import { humanize } from './schema.js';

/** `Nov 28, 15:06` in the locale's style; with `seconds`, `Nov 28, 15:06:38` (attempt times). */
export function formatDateTime(iso: string | null | undefined, locale?: string, seconds = false): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(locale, {
    month: 'short',
    day: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {}),
  }).format(date);
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${String(Math.round(ms))} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** `2026-11-28T15:06` (a datetime-local value) for a Date, in local time. */
export function toLocalInput(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${String(date.getFullYear())}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A datetime-local value (local time) as RFC 3339 UTC; undefined when empty or unreadable. */
export function fromLocalInput(value: string): string | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

const KIND_LABELS: Record<string, string> = {
  webhook_secret: 'Signing secret',
  basic: 'Basic auth',
  bearer: 'Bearer token',
  aws_access_key: 'AWS access key',
  aws_role: 'AWS IAM role',
  gcp_service_account: 'GCP service account',
  azure_shared_key: 'Azure shared key',
  azure_sas_token: 'Azure SAS token',
  azure_sas_key: 'Azure shared access policy',
  sasl_plain: 'SASL/PLAIN',
  sasl_scram: 'SASL/SCRAM',
  nats_token: 'NATS token',
  postgres_dsn: 'PostgreSQL connection string',
  secret: 'Secret',
};

export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? humanize(kind);
}

/**
 * A kind's label inside a sentence ("Enter the new signing secret"): the first letter lowered,
 * unless the first word is an acronym or brand (AWS, SASL/PLAIN, PostgreSQL).
 */
export function kindPhrase(kind: string): string {
  const label = kindLabel(kind);
  const first = label.split(' ')[0] ?? '';
  return first.slice(1) === first.slice(1).toLowerCase() ? label.charAt(0).toLowerCase() + label.slice(1) : label;
}

/** Every credential kind any destination type accepts, once each, with its secret's schema. */
export function allKinds(types: DestinationType[]): CredentialKind[] {
  const seen = new Map<string, CredentialKind>();
  for (const type of types) {
    for (const kind of type.credential_kinds ?? []) {
      if (!seen.has(kind.kind)) seen.set(kind.kind, kind);
    }
  }
  return [...seen.values()];
}

/** The one line that says where a destination points: its first required text setting. */
export function summarize(destination: Destination, type: DestinationType | undefined): string {
  const schema = type?.config_schema;
  const candidates = [...(schema?.required ?? []), ...Object.keys(schema?.properties ?? {})];
  for (const name of candidates) {
    const value = destination.config[name];
    if (typeof value === 'string' && value) return value;
  }
  return '';
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${String(n)} ${n === 1 ? one : many}`;
}
