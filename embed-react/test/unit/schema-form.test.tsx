import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';

import type { JsonSchema } from '../../src/api.js';
import { clearChanged, fieldKind, humanize, mapDetails, orderedProperties, prune, rendersPath, validate } from '../../src/schema.js';
import { SchemaForm } from '../../src/SchemaForm.js';

afterEach(cleanup);

/** The webhook type's config_schema as the host serves it (keys sorted, as serde_json does). */
const webhook: JsonSchema = {
  additionalProperties: false,
  properties: {
    headers: {
      additionalProperties: { maxLength: 4096, type: 'string' },
      maxProperties: 32,
      title: 'Custom headers',
      type: 'object',
    },
    timeout_ms: { default: 10000, maximum: 60000, minimum: 1000, title: 'Timeout (ms)', type: 'integer' },
    url: {
      description: 'Where events are POSTed.',
      format: 'uri',
      maxLength: 2048,
      pattern: '^https?://',
      title: 'Endpoint URL',
      type: 'string',
    },
  },
  required: ['url'],
  type: 'object',
};

/** A made-up type with every construct the renderer knows, and one it doesn't. */
const kitchenSink: JsonSchema = {
  type: 'object',
  required: ['region', 'topic'],
  properties: {
    region: { type: 'string', enum: ['eu-west-1', 'us-east-1'] },
    topic: { type: 'string', minLength: 3 },
    compress: { type: 'boolean', title: 'Compress payloads' },
    partitions: { type: 'array', items: { type: 'integer', minimum: 1 }, maxItems: 3 },
    tls: {
      type: 'object',
      title: 'TLS',
      required: ['ca'],
      properties: { ca: { type: 'string', title: 'CA certificate' }, verify: { type: 'boolean' } },
    },
    routing: { oneOf: [{ type: 'string' }, { type: 'object' }], title: 'Routing' },
  },
};

function Harness({
  schema,
  initial = {},
  errors,
  secret,
  onValue,
}: {
  schema: JsonSchema;
  initial?: Record<string, unknown>;
  errors?: Record<string, string>;
  secret?: boolean;
  onValue?: (value: Record<string, unknown>) => void;
}) {
  const [value, setValue] = useState(initial);
  return (
    <SchemaForm
      schema={schema}
      value={value}
      onChange={(next) => {
        setValue(next);
        onValue?.(next);
      }}
      errors={errors}
      idPrefix="t"
      secret={secret}
    />
  );
}

describe('schema interpretation', () => {
  it('chooses a control per schema node', () => {
    const p = kitchenSink.properties ?? {};
    expect(fieldKind(webhook.properties?.url ?? {})).toBe('string');
    expect(fieldKind(webhook.properties?.timeout_ms ?? {})).toBe('integer');
    expect(fieldKind(webhook.properties?.headers ?? {})).toBe('map');
    expect(fieldKind(p.region ?? {})).toBe('enum');
    expect(fieldKind(p.compress ?? {})).toBe('boolean');
    expect(fieldKind(p.partitions ?? {})).toBe('list');
    expect(fieldKind(p.tls ?? {})).toBe('object');
    expect(fieldKind(p.routing ?? {})).toBe('json');
  });

  it('puts required properties first', () => {
    expect(orderedProperties(webhook).map(([name]) => name)).toEqual(['url', 'headers', 'timeout_ms']);
  });

  it('labels untitled properties readably', () => {
    expect(humanize('role_arn')).toBe('Role ARN');
    expect(humanize('timeoutMs')).toBe('Timeout MS');
    expect(humanize('access_key_id')).toBe('Access key ID');
  });

  it('validates required, patterns, formats, ranges and nested objects', () => {
    expect(validate(webhook, {})).toEqual({ url: 'This field is required.' });
    expect(validate(webhook, { url: 'ftp://x' })).toEqual({ url: "Doesn't have the expected format (^https?://)." });
    expect(validate(webhook, { url: 'not a url' })).toHaveProperty('url');
    expect(validate(webhook, { url: 'https://ok.example', timeout_ms: 5 })).toEqual({ timeout_ms: 'Must be at least 1000.' });
    expect(validate(webhook, { url: 'https://ok.example', timeout_ms: 1500.5 })).toEqual({ timeout_ms: 'Must be a whole number.' });
    expect(validate(webhook, { url: 'https://ok.example', headers: { 'X-A': 'x'.repeat(4097) } })).toEqual({
      'headers.X-A': 'Must be at most 4096 characters.',
    });
    expect(validate(kitchenSink, { region: 'mars', topic: 'ab', partitions: [0], tls: {} })).toEqual({
      region: 'Choose one of the listed options.',
      topic: 'Must be at least 3 characters.',
      'partitions[0]': 'Must be at least 1.',
      'tls.ca': 'This field is required.',
    });
    expect(validate(webhook, { url: 'https://hooks.example.com/a', timeout_ms: 2000 })).toEqual({});
  });

  it('drops the errors of the properties the customer edits', () => {
    const errors = { url: 'bad', 'headers.Authorization': 'reserved', timeout_ms: 'too small' };
    expect(clearChanged(errors, { url: 'a', headers: { Authorization: 'x' } }, { url: 'a', headers: { 'X-Ok': 'x' } })).toEqual({
      url: 'bad',
      timeout_ms: 'too small',
    });
    expect(clearChanged(errors, { url: 'a' }, { url: 'a' })).toBe(errors);
  });

  it('prunes what an emptied form leaves behind', () => {
    expect(prune({ url: 'https://x', headers: {}, timeout_ms: undefined, name: '', list: [] })).toEqual({ url: 'https://x' });
  });

  it('maps API error details to forms by path prefix', () => {
    const { byPrefix, unmatched } = mapDetails(
      [
        { field: 'config.url', message: 'bad url' },
        { field: 'config.headers.Authorization', message: 'this header is set by Pushrail' },
        { field: 'name', message: 'must be 1 to 255 bytes' },
        { field: 'event_types[1]', message: 'bad glob' },
        { field: 'payload', message: 'too large' },
      ],
      ['config'],
      ['name', 'event_types'],
    );
    expect(byPrefix.config).toEqual({ url: 'bad url', 'headers.Authorization': 'this header is set by Pushrail' });
    expect(byPrefix['']).toEqual({ name: 'must be 1 to 255 bytes', event_types: 'bad glob' });
    expect(unmatched).toEqual([{ field: 'payload', message: 'too large' }]);
    expect(rendersPath(webhook, 'headers.Authorization')).toBe(true);
    expect(rendersPath(webhook, 'nope')).toBe(false);
  });
});

describe('<SchemaForm>', () => {
  it('renders the webhook config with labelled, typed controls in a sensible order', () => {
    const { container } = render(<Harness schema={webhook} />);
    const url = screen.getByLabelText('Endpoint URL');
    expect(url).toHaveProperty('type', 'url');
    expect(url).toHaveProperty('required', true);
    expect(url.getAttribute('placeholder')).toBe('https://');
    expect(url.getAttribute('aria-describedby')).toBe('t-url-hint');
    expect(screen.getByText('Where events are POSTed.').id).toBe('t-url-hint');
    const timeout = screen.getByLabelText(/Timeout \(ms\)/);
    expect(timeout).toHaveProperty('type', 'number');
    expect(timeout.getAttribute('min')).toBe('1000');
    expect(timeout.getAttribute('placeholder')).toBe('10000 (default)');
    const labels = [...container.querySelectorAll('label, legend')].map((l) => l.textContent);
    expect(labels).toEqual(['Endpoint URL', 'Custom headersOptional', 'Timeout (ms)Optional']);
  });

  it('produces a config object: numbers as numbers, blanks left out, header rows as a map', () => {
    const onValue = vi.fn();
    render(<Harness schema={webhook} onValue={onValue} />);
    fireEvent.change(screen.getByLabelText('Endpoint URL'), { target: { value: 'https://hooks.example.com' } });
    fireEvent.change(screen.getByLabelText(/Timeout/), { target: { value: '2500' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add custom header' }));
    fireEvent.change(screen.getByLabelText('Custom headers 1 name'), { target: { value: 'X-Team' } });
    fireEvent.change(screen.getByLabelText('Custom headers 1 value'), { target: { value: 'payments' } });
    expect(onValue).toHaveBeenLastCalledWith({
      url: 'https://hooks.example.com',
      timeout_ms: 2500,
      headers: { 'X-Team': 'payments' },
    });
    fireEvent.change(screen.getByLabelText(/Timeout/), { target: { value: '' } });
    fireEvent.click(screen.getByRole('button', { name: 'Remove Custom headers 1' }));
    expect(onValue).toHaveBeenLastCalledWith({ url: 'https://hooks.example.com' });
  });

  it('shows errors on their fields, linked for assistive technology', () => {
    render(
      <Harness
        schema={webhook}
        initial={{ url: 'http://x', headers: { Authorization: 'x' } }}
        errors={{ url: 'URL is not allowed', 'headers.Authorization': 'this header is set by Pushrail' }}
      />,
    );
    const url = screen.getByLabelText('Endpoint URL');
    expect(url.getAttribute('aria-invalid')).toBe('true');
    expect(url.getAttribute('aria-describedby')).toBe('t-url-hint t-url-error');
    expect(document.getElementById('t-url-error')?.textContent).toBe('URL is not allowed');
    const headerValue = screen.getByLabelText('Custom headers 1 value');
    expect(headerValue.getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByText('this header is set by Pushrail')).toBeTruthy();
  });

  it('renders enums, booleans, lists, nested objects, and JSON for what it cannot model', () => {
    const onValue = vi.fn();
    render(<Harness schema={kitchenSink} onValue={onValue} />);
    const region = screen.getByLabelText('Region');
    expect(region.tagName).toBe('SELECT');
    fireEvent.change(region, { target: { value: '1' } });
    expect(onValue).toHaveBeenLastCalledWith({ region: 'us-east-1' });
    fireEvent.click(screen.getByLabelText('Compress payloads'));
    fireEvent.click(screen.getByRole('button', { name: 'Add item' }));
    fireEvent.change(screen.getByLabelText('Partitions 1'), { target: { value: '4' } });
    fireEvent.change(screen.getByLabelText('CA certificate'), { target: { value: 'PEM' } });
    expect(screen.getByRole('group', { name: 'TLS' })).toBeTruthy();
    const routing = screen.getByLabelText(/Routing/);
    expect(routing.tagName).toBe('TEXTAREA');
    fireEvent.change(routing, { target: { value: '{"key": "a"}' } });
    expect(onValue).toHaveBeenLastCalledWith({
      region: 'us-east-1',
      compress: true,
      partitions: [4],
      tls: { ca: 'PEM' },
      routing: { key: 'a' },
    });
    fireEvent.change(routing, { target: { value: '{"key": ' } });
    expect(screen.getByText('Not valid JSON yet.')).toBeTruthy();
  });

  it('renders every secret as a write-only password field that starts empty', () => {
    const basic: JsonSchema = {
      type: 'object',
      required: ['username', 'password'],
      properties: { password: { type: 'string', title: 'Password' }, username: { type: 'string', title: 'Username' } },
    };
    const onValue = vi.fn();
    render(<Harness schema={basic} secret onValue={onValue} />);
    for (const name of ['Username', 'Password']) {
      const input = screen.getByLabelText<HTMLInputElement>(name);
      expect(input.type).toBe('password');
      expect(input.autocomplete).toBe('new-password');
      expect(input.value).toBe('');
    }
    expect(screen.getAllByText('Write-only: stored encrypted and never shown again.')).toHaveLength(2);
    act(() => {
      fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'hunter2' } });
    });
    expect(onValue).toHaveBeenLastCalledWith({ password: 'hunter2' });
  });

  it('shows the schema’s own description above its fields, describing the group, and each field’s under it', () => {
    const key: JsonSchema = {
      type: 'object',
      description: 'Storage account → Security + networking → Access keys.',
      required: ['account_name', 'account_key'],
      properties: {
        account_name: { type: 'string', title: 'Storage account name', description: 'The name at the top of the page.' },
        account_key: { type: 'string', title: 'Account key' },
      },
    };
    const { container } = render(<Harness schema={key} secret />);
    const intro = screen.getByText('Storage account → Security + networking → Access keys.');
    expect(intro.id).toBe('t-description');
    const group = screen.getByRole('group');
    expect(group.getAttribute('aria-describedby')).toBe('t-description');
    expect(group.contains(screen.getByLabelText('Storage account name'))).toBe(true);
    // Before the first field.
    expect(container.querySelector('.pr-schema-form')?.firstElementChild).toBe(intro);
    const name = screen.getByLabelText('Storage account name');
    expect(name.getAttribute('aria-describedby')).toBe('t-account_name-hint');
    expect(document.getElementById('t-account_name-hint')?.textContent).toBe('The name at the top of the page.');
    // Without a description of its own, a secret field still says it is write-only.
    expect(document.getElementById('t-account_key-hint')?.textContent).toBe('Write-only: stored encrypted and never shown again.');

    cleanup();
    const plain = render(<Harness schema={webhook} />);
    const form = plain.container.querySelector('.pr-schema-form');
    expect(form?.getAttribute('role')).toBeNull();
    expect(form?.getAttribute('aria-describedby')).toBeNull();
    expect(document.getElementById('t-description')).toBeNull();
  });
});
