/**
 * Cloud credentials in the embed: a Service Bus connection string pasted into an `azure_sas_key`
 * form (create and rotate), and the help text of a kind's schema shown with its form.
 */

import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { DestinationType, JsonSchema } from '../../src/api.js';
import { PushrailEmbed } from '../../src/PushrailEmbed.js';
import { CONNECTION_STRING_HINT } from '../../src/screens/ServiceBus.js';
import { apiError, json, jwt } from './helpers.js';

const KEY = 'Zm9vYmFyYmF6cXV4K3Rlc3Qva2V5PT1wdXNocmFpbA==';
const CONNECTION_STRING = `Endpoint=sb://acme-events.servicebus.windows.net/;SharedAccessKeyName=send-only;SharedAccessKey=${KEY};EntityPath=orders`;

/** The host's schema of `azure_sas_key` (host/src/credentials.rs), without its help text. */
const sasKeySchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['key_name', 'key'],
  properties: {
    key_name: { type: 'string', minLength: 1, maxLength: 16384, title: 'Shared access policy name' },
    key: { type: 'string', minLength: 1, maxLength: 16384, title: 'Shared access policy key' },
  },
};

const serviceBusType: DestinationType = {
  type: 'azure_service_bus',
  name: 'Azure Service Bus',
  description: 'Sends each event as a message to a queue or topic',
  config_schema: {
    type: 'object',
    required: ['namespace', 'entity'],
    properties: { namespace: { type: 'string', title: 'Namespace' }, entity: { type: 'string', title: 'Queue or topic' } },
  },
  // The plugin's own (plugin-sdk azure::service_bus::credential_schema), with help text.
  credential_schema: {
    title: 'Shared access policy',
    type: 'object',
    required: ['key_name', 'key'],
    properties: {
      key_name: { type: 'string', title: 'Shared access policy name', minLength: 1, description: 'The policy’s name.' },
      key: { type: 'string', title: 'Shared access policy key', minLength: 1, description: 'The policy’s Primary key.' },
    },
  },
  credential_kinds: [{ kind: 'azure_sas_key', schema: sasKeySchema }],
  credential_required: true,
};

const GCP_HELP = 'IAM & Admin → Service accounts → the account → Keys → Add key → Create new key → JSON';

/** The host's `gcp_service_account` schema (host/src/credentials.rs), trimmed, with its help text. */
const serviceAccountSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['client_email', 'private_key'],
  description: GCP_HELP,
  properties: {
    type: { type: 'string' },
    project_id: { type: 'string', title: 'Project' },
    private_key: { type: 'string', title: 'Private key (PEM)', 'x-multiline': true, description: 'The key file’s private_key.' },
    client_email: { type: 'string', title: 'Client email' },
  },
};
const gcpCredentialSchema: JsonSchema = {
  type: 'object',
  required: ['client_email', 'private_key'],
  description: GCP_HELP,
  properties: {
    type: { type: 'string', const: 'service_account' },
    project_id: { type: 'string', title: 'Project' },
    private_key: { type: 'string', title: 'Private key (PEM)', description: 'The key file’s private_key.' },
    client_email: { type: 'string', title: 'Client email' },
  },
};

function googleType(type: string, credentialSchema: JsonSchema = gcpCredentialSchema): DestinationType {
  return {
    type,
    name: type,
    description: `${type}: the service account needs roles/${type}.writer`,
    config_schema: { type: 'object', properties: {} },
    credential_schema: credentialSchema,
    credential_kinds: [{ kind: 'gcp_service_account', schema: serviceAccountSchema }],
    credential_required: true,
  };
}

let requests: { method: string; path: string; body: unknown }[] = [];
let types: DestinationType[] = [];
let credentials: unknown[] = [];

function serve() {
  requests = [];
  vi.stubGlobal(
    'fetch',
    vi.fn((input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const method = init?.method ?? 'GET';
      const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
      requests.push({ method, path: url.pathname, body });
      const path = url.pathname.replace(/^\/embed\/v1/, '');
      const created = { created_at: '2026-01-01T00:00:00Z', rotated_at: null, fingerprint: 'send-only · 1a2b3c' };
      const answer =
        method === 'GET' && path === '/destination-types'
          ? json(200, types)
          : method === 'GET' && path === '/destinations'
            ? json(200, { items: [] })
            : method === 'GET' && path === '/credentials'
              ? json(200, { items: credentials })
              : method === 'POST' && path === '/credentials'
                ? json(201, { id: 'cred_sb', name: (body as { name: string }).name, kind: 'azure_sas_key', ...created })
                : method === 'POST' && path === '/credentials/cred_sb/rotate'
                  ? json(200, { id: 'cred_sb', name: 'Orders queue', kind: 'azure_sas_key', ...created, rotated_at: '2026-01-02T00:00:00Z' })
                  : apiError(404, 'not_found', 'route not found');
      return Promise.resolve(answer);
    }),
  );
}

beforeEach(() => {
  vi.stubGlobal('requestAnimationFrame', (cb: FrameRequestCallback) => setTimeout(() => { cb(0); }, 0));
  types = [serviceBusType];
  credentials = [];
  serve();
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const token = () => Promise.resolve(jwt(900));

async function openCreate(kind: string): Promise<void> {
  render(<PushrailEmbed baseUrl="https://x" fetchToken={token} initialTab="credentials" />);
  const [add] = await screen.findAllByRole('button', { name: 'Add credential' });
  if (add) fireEvent.click(add);
  fireEvent.change(await screen.findByLabelText('Name'), { target: { value: 'Orders queue' } });
  fireEvent.change(screen.getByLabelText('Kind'), { target: { value: kind } });
}

function pasteField(): HTMLInputElement {
  return screen.getByLabelText<HTMLInputElement>(/^Paste a connection string/);
}

function posted(): unknown[] {
  return requests.filter((r) => r.method === 'POST').map((r) => r.body);
}

describe('a pasted Service Bus connection string', () => {
  it('fills the policy name and key of a new azure_sas_key credential; only those are sent', async () => {
    await openCreate('azure_sas_key');
    const paste = pasteField();
    expect(paste.type).toBe('password'); // the string holds the key
    const hint = screen.getByText(CONNECTION_STRING_HINT);
    expect(paste.getAttribute('aria-describedby')?.split(' ')).toContain(hint.id);
    expect(CONNECTION_STRING_HINT).toBe(
      'Azure portal → your Service Bus namespace → Settings → Shared access policies → a policy with the Send claim → Primary connection string',
    );

    fireEvent.change(paste, { target: { value: CONNECTION_STRING } });
    expect(screen.getByLabelText<HTMLInputElement>('Shared access policy name').value).toBe('send-only');
    expect(screen.getByLabelText<HTMLInputElement>('Shared access policy key').value).toBe(KEY);
    expect(pasteField().value).toBe(''); // read, then dropped
    const status = document.getElementById(`${paste.id}-status`);
    expect(status?.getAttribute('role')).toBe('status');
    expect(status?.textContent).toBe('Filled in the policy name “send-only” and its key from the connection string.');
    expect(paste.getAttribute('aria-describedby')?.split(' ')).toContain(status?.id);

    fireEvent.click(screen.getByRole('button', { name: 'Save credential' }));
    await screen.findByText(/“Orders queue” saved/);
    expect(posted()).toEqual([{ name: 'Orders queue', kind: 'azure_sas_key', secret: { key_name: 'send-only', key: KEY } }]);
    const everything = JSON.stringify(requests);
    expect(everything).not.toContain('Endpoint');
    expect(everything).not.toContain('SharedAccessKey');
    expect(everything).not.toContain('servicebus.windows.net');
  });

  it('says inline what a string that does not read lacks, without repeating the key, and sends nothing', async () => {
    await openCreate('azure_sas_key');
    fireEvent.change(pasteField(), {
      target: { value: `Endpoint=sb://acme-events.servicebus.windows.net/;SharedAccessKeyName=send-only;SharedAccessKe=${KEY}` },
    });
    const message = screen.getByText('The connection string has no SharedAccessKey.');
    const error = message.closest('.pr-error');
    expect(pasteField().getAttribute('aria-invalid')).toBe('true');
    expect(pasteField().getAttribute('aria-describedby')?.split(' ')).toContain(error?.id);
    expect(error?.textContent).not.toContain(KEY);
    expect(screen.getByLabelText<HTMLInputElement>('Shared access policy name').value).toBe('');
    expect(screen.getByLabelText<HTMLInputElement>('Shared access policy key').value).toBe('');

    // A SAS token is refused with its own message.
    fireEvent.change(pasteField(), { target: { value: 'SharedAccessSignature sr=x&sig=y&se=1&skn=send-only' } });
    screen.getByText(/This is a shared access signature/);

    // Saving now: the fields are still empty, so the form's own checks stop it.
    fireEvent.click(screen.getByRole('button', { name: 'Save credential' }));
    await screen.findByText('Some fields need attention. Check the highlighted fields.');
    expect(posted()).toEqual([]);

    // A good string clears the error.
    fireEvent.change(pasteField(), { target: { value: CONNECTION_STRING } });
    expect(screen.queryByText(/This is a shared access signature/)).toBeNull();
    expect(pasteField().getAttribute('aria-invalid')).toBeNull();
    expect(screen.getByLabelText<HTMLInputElement>('Shared access policy key').value).toBe(KEY);
  });

  it('is offered for azure_sas_key only', async () => {
    types = [serviceBusType, googleType('gcs')];
    await openCreate('gcp_service_account');
    expect(screen.queryByLabelText(/^Paste a connection string/)).toBeNull();
    fireEvent.change(screen.getByLabelText('Kind'), { target: { value: 'azure_sas_key' } });
    pasteField();
  });

  it('fills the rotate dialog too', async () => {
    credentials = [
      { id: 'cred_sb', name: 'Orders queue', kind: 'azure_sas_key', created_at: '2026-01-01T00:00:00Z', rotated_at: null, fingerprint: 'send-only · 1a2b3c' },
    ];
    render(<PushrailEmbed baseUrl="https://x" fetchToken={token} initialTab="credentials" />);
    fireEvent.click(await screen.findByRole('button', { name: 'Rotate Orders queue' }));
    const rotated = CONNECTION_STRING.replace('send-only', 'send-2').replace(KEY, `${KEY.slice(0, -2)}x=`);
    fireEvent.change(pasteField(), { target: { value: rotated } });
    expect(screen.getByLabelText<HTMLInputElement>('Shared access policy name').value).toBe('send-2');
    fireEvent.click(screen.getByRole('button', { name: 'Rotate credential' }));
    await screen.findByText(/“Orders queue” rotated/);
    expect(posted()).toEqual([{ secret: { key_name: 'send-2', key: `${KEY.slice(0, -2)}x=` } }]);
    expect(JSON.stringify(requests)).not.toContain('Endpoint');
  });
});

describe('help text of a kind’s schema', () => {
  it('shows where a service account key is found, above the form and linked to it', async () => {
    types = [googleType('gcs'), googleType('bigquery')];
    await openCreate('gcp_service_account');
    const intro = screen.getByText(GCP_HELP);
    const group = intro.closest('[role="group"]');
    expect(group?.getAttribute('aria-describedby')).toBe(intro.id);
    expect(group?.contains(screen.getByLabelText('Client email'))).toBe(true);
    const pem = screen.getByLabelText('Private key (PEM)');
    expect(document.getElementById(pem.getAttribute('aria-describedby') ?? '')?.textContent).toBe('The key file’s private_key.');
  });
});
