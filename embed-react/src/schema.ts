/**
 * The JSON Schema subset destination types and credential kinds use, interpreted without code
 * generation (no `eval`, so a strict Content-Security-Policy is fine). Pushrail validates every
 * body itself; the checks here only give earlier, friendlier feedback.
 */

import type { FieldError, JsonSchema } from './api.js';

/** Error messages by dotted path relative to the form's root (`url`, `headers.X-Key`). */
export type FieldErrors = Record<string, string>;

export type FieldKind =
  | 'enum'
  | 'const'
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'object'
  | 'map'
  | 'list'
  | 'json';

function primaryType(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== 'null');
  return schema.type;
}

function isPrimitive(schema: JsonSchema | undefined): boolean {
  if (!schema) return false;
  if (Array.isArray(schema.enum)) return true;
  const type = primaryType(schema);
  return type === 'string' || type === 'integer' || type === 'number' || type === 'boolean';
}

/** How a schema node is rendered. Anything outside the subset becomes a JSON editor. */
export function fieldKind(schema: JsonSchema): FieldKind {
  if ('oneOf' in schema || 'anyOf' in schema || 'allOf' in schema || '$ref' in schema) return 'json';
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return 'enum';
  if ('const' in schema) return 'const';
  const type = primaryType(schema);
  switch (type) {
    case 'string':
    case 'integer':
    case 'number':
    case 'boolean':
      return type;
    case 'object': {
      if (schema.properties && Object.keys(schema.properties).length > 0) return 'object';
      const extra = schema.additionalProperties;
      if (typeof extra === 'object' && isPrimitive(extra)) return 'map';
      return 'json';
    }
    case 'array':
      return isPrimitive(schema.items) ? 'list' : 'json';
    default:
      return schema.properties ? 'object' : 'json';
  }
}

/** Required properties first, then the rest, each group in the schema's order. */
export function orderedProperties(schema: JsonSchema): [string, JsonSchema][] {
  const entries = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  return [
    ...entries.filter(([name]) => required.has(name)),
    ...entries.filter(([name]) => !required.has(name)),
  ];
}

const ACRONYMS = new Set(['url', 'id', 'api', 'arn', 'dsn', 'sas', 'sasl', 'aws', 'gcp', 'uri', 'ms', 'tls', 'http']);

/** `timeout_ms` → "Timeout ms", `role_arn` → "Role ARN": for properties without a `title`. */
export function humanize(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[_\-\s.]+/)
    .filter(Boolean)
    .map((word) => (ACRONYMS.has(word.toLowerCase()) ? word.toUpperCase() : word.toLowerCase()));
  const text = words.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function labelOf(name: string, schema: JsonSchema): string {
  return typeof schema.title === 'string' && schema.title ? schema.title : humanize(name);
}

function isEmpty(value: unknown): boolean {
  return (
    value === undefined ||
    value === null ||
    value === '' ||
    (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0)
  );
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function validateNode(schema: JsonSchema, value: unknown, path: string, errors: FieldErrors): void {
  if (value === undefined || value === null || value === '') return;
  const kind = fieldKind(schema);
  const set = (message: string) => {
    if (!(path in errors)) errors[path] = message;
  };
  switch (kind) {
    case 'enum':
      if (!schema.enum?.some((option) => option === value)) set('Choose one of the listed options.');
      return;
    case 'string': {
      if (typeof value !== 'string') {
        set('Must be text.');
        return;
      }
      const length = Array.from(value).length;
      if (schema.minLength !== undefined && length < schema.minLength) {
        set(schema.minLength === 1 ? 'This field is required.' : `Must be at least ${String(schema.minLength)} characters.`);
      } else if (schema.maxLength !== undefined && length > schema.maxLength) {
        set(`Must be at most ${String(schema.maxLength)} characters.`);
      } else if ((schema.format === 'uri' || schema.format === 'url') && !isUrl(value)) {
        set('Must be a full URL, like https://example.com/webhooks.');
      } else if (schema.pattern && !matches(schema.pattern, value)) {
        set(`Doesn't have the expected format (${schema.pattern}).`);
      }
      return;
    }
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || Number.isNaN(value)) {
        set('Must be a number.');
        return;
      }
      if (kind === 'integer' && !Number.isInteger(value)) {
        set('Must be a whole number.');
        return;
      }
      if (schema.minimum !== undefined && value < schema.minimum) {
        set(`Must be at least ${String(schema.minimum)}.`);
      } else if (schema.maximum !== undefined && value > schema.maximum) {
        set(`Must be at most ${String(schema.maximum)}.`);
      } else if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
        set(`Must be more than ${String(schema.exclusiveMinimum)}.`);
      } else if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) {
        set(`Must be less than ${String(schema.exclusiveMaximum)}.`);
      }
      return;
    }
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        set('Must be an object.');
        return;
      }
      const object = value as Record<string, unknown>;
      for (const name of schema.required ?? []) {
        if (isEmpty(object[name])) errors[join(path, name)] = 'This field is required.';
      }
      for (const [name, child] of Object.entries(schema.properties ?? {})) {
        validateNode(child, object[name], join(path, name), errors);
      }
      return;
    }
    case 'map': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        set('Must be an object.');
        return;
      }
      const entries = Object.entries(value as Record<string, unknown>);
      if (schema.maxProperties !== undefined && entries.length > schema.maxProperties) {
        set(`At most ${String(schema.maxProperties)} entries.`);
      }
      const child = schema.additionalProperties;
      if (typeof child !== 'object') return;
      for (const [key, item] of entries) validateNode(child, item, join(path, key), errors);
      return;
    }
    case 'list': {
      if (!Array.isArray(value)) {
        set('Must be a list.');
        return;
      }
      if (schema.minItems !== undefined && value.length < schema.minItems) {
        set(`At least ${String(schema.minItems)} items.`);
      } else if (schema.maxItems !== undefined && value.length > schema.maxItems) {
        set(`At most ${String(schema.maxItems)} items.`);
      }
      value.forEach((item, i) => {
        if (schema.items) validateNode(schema.items, item, `${path}[${String(i)}]`, errors);
      });
      return;
    }
    default:
      return;
  }
}

function isUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol.length > 1 && url.host.length > 0;
  } catch {
    return false;
  }
}

function matches(pattern: string, value: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(value);
  } catch {
    return true; // A pattern this engine can't read is left to the server.
  }
}

/** Client-side checks of a form value against its schema: required, lengths, ranges, formats. */
export function validate(schema: JsonSchema, value: Record<string, unknown>): FieldErrors {
  const errors: FieldErrors = {};
  const required = schema.required ?? [];
  for (const name of required) {
    if (isEmpty(value[name])) errors[name] = 'This field is required.';
  }
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    if (!(name in errors)) validateNode(child, value[name], name, errors);
  }
  return errors;
}

/** The errors left once the customer edits a form: those of the properties that changed are dropped. */
export function clearChanged(
  errors: FieldErrors,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): FieldErrors {
  const changed = new Set(
    [...Object.keys(before), ...Object.keys(after)].filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key])),
  );
  if (changed.size === 0) return errors;
  return Object.fromEntries(
    Object.entries(errors).filter(([path]) => !changed.has(path.split(/[.[]/)[0] ?? path)),
  );
}

/** Drops empty strings and empty objects a form leaves behind, so the server applies defaults. */
export function prune(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined || item === null || item === '') continue;
    if (typeof item === 'object' && !Array.isArray(item)) {
      const inner = prune(item as Record<string, unknown>);
      if (Object.keys(inner).length > 0) out[key] = inner;
      continue;
    }
    if (Array.isArray(item) && item.length === 0) continue;
    out[key] = item;
  }
  return out;
}

/**
 * Splits an API error's details between the forms of a screen. `prefixes` maps a detail path
 * prefix (`config`, `secret`) to a form; top-level fields (`name`) are kept under their own key.
 * Returns the errors per prefix ('' for top-level) and any detail that matched nothing.
 */
export function mapDetails(
  details: FieldError[],
  prefixes: string[],
  topLevel: string[],
): { byPrefix: Record<string, FieldErrors>; unmatched: FieldError[] } {
  const top: FieldErrors = {};
  const byPrefix: Record<string, FieldErrors> = { '': top };
  for (const prefix of prefixes) byPrefix[prefix] = {};
  const unmatched: FieldError[] = [];
  for (const detail of details) {
    const field = detail.field;
    const prefix = prefixes.find((p) => field.startsWith(`${p}.`) || field.startsWith(`${p}[`));
    if (prefix) {
      const rest = field.slice(prefix.length).replace(/^\./, '');
      const bucket = byPrefix[prefix] ?? {};
      bucket[rest] ??= detail.message;
      byPrefix[prefix] = bucket;
      continue;
    }
    const name = topLevel.find((t) => field === t || field.startsWith(`${t}[`) || field.startsWith(`${t}.`));
    if (name) {
      top[name] ??= detail.message;
      continue;
    }
    unmatched.push(detail);
  }
  return { byPrefix, unmatched };
}

/** Paths a schema renders a control for; a map accepts any key under its own path. */
export function rendersPath(schema: JsonSchema, path: string): boolean {
  if (path === '') return true;
  const [head, ...rest] = path.split('.');
  if (head === undefined) return false;
  const name = head.replace(/\[\d+\]$/, '');
  const child = schema.properties?.[name];
  if (!child) return false;
  if (rest.length === 0) return true;
  const kind = fieldKind(child);
  if (kind === 'map' || kind === 'json') return true;
  if (kind === 'object') return rendersPath(child, rest.join('.'));
  return false;
}
