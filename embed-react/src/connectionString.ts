/**
 * Azure Service Bus connection strings, as the Azure portal shows them:
 * `Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=<name>;SharedAccessKey=<key>`,
 * optionally `;EntityPath=<queue or topic>`. The embed takes one apart into the fields of an
 * `azure_sas_key` credential; the string itself is never sent anywhere. Error messages name what
 * is wrong and never repeat any part of the string (the key is in it).
 */

export interface ServiceBusConnectionString {
  /** `sb://acme.servicebus.windows.net/`. */
  endpoint: string;
  /** The namespace's name (`acme`), when the endpoint is `<namespace>.servicebus.windows.net`. */
  namespace?: string;
  /** The shared access policy's name (`SharedAccessKeyName`). */
  keyName: string;
  /** The policy's key (`SharedAccessKey`), base64: it may contain and end in `=`. */
  key: string;
  /** The queue or topic (`EntityPath`), in a connection string of an entity's own policy. */
  entityPath?: string;
}

export type ConnectionStringResult = { ok: true; value: ServiceBusConnectionString } | { ok: false; error: string };

const KNOWN = {
  endpoint: 'Endpoint',
  sharedaccesskeyname: 'SharedAccessKeyName',
  sharedaccesskey: 'SharedAccessKey',
  entitypath: 'EntityPath',
} as const;
type Known = keyof typeof KNOWN;

const REQUIRED: Known[] = ['endpoint', 'sharedaccesskeyname', 'sharedaccesskey'];

const SERVICE_BUS_SUFFIX = '.servicebus.windows.net';

export const NOT_A_CONNECTION_STRING =
  "This isn't a Service Bus connection string. It looks like Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…";

export const SAS_TOKEN_REFUSED =
  'This is a shared access signature (SharedAccessSignature=…), a token that expires. Paste the connection string of a shared access policy instead: it has a SharedAccessKeyName and a SharedAccessKey.';

export const STORAGE_CONNECTION_STRING =
  "This is a storage account's connection string. Paste the connection string of a Service Bus shared access policy instead.";

function fail(error: string): ConnectionStringResult {
  return { ok: false, error };
}

/** `A`, `A or B`, `A, B or C`. */
function either(names: string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} or ${names[names.length - 1] ?? ''}`;
}

/**
 * Reads a pasted connection string. Part names are matched without regard to case and in any
 * order, a trailing `;` and whitespace (line breaks of a wrapped paste included) are ignored, a
 * value runs from the first `=` to the next `;`, and unknown parts (`TransportType=Amqp`) are
 * skipped. Refused: shared access signatures (tokens that expire), other services' connection
 * strings, and strings without an endpoint, policy name or key.
 */
export function parseServiceBusConnectionString(input: string): ConnectionStringResult {
  // `SharedAccessSignature sr=…` (a token) or `…;SharedAccessSignature=SharedAccessSignature sr=…`,
  // recognised before whitespace is dropped.
  if (/(^|;)\s*["']?\s*SharedAccessSignature\s*[\s=]/i.test(input)) return fail(SAS_TOKEN_REFUSED);

  // None of the parts has whitespace of its own: the endpoint is a URL, the key base64, and names
  // of policies and entities are letters, digits, `.`, `-`, `_` and `/`.
  let text = input.replace(/\s+/g, '');
  const quoted = /^(["'])(.*)\1$/.exec(text);
  if (quoted) text = quoted[2] ?? '';
  if (text === '') return fail('Paste a connection string.');

  const values: Partial<Record<Known, string>> = {};
  const other = new Set<string>();
  for (const part of text.split(';')) {
    if (part === '') continue;
    const equals = part.indexOf('=');
    if (equals <= 0) {
      return fail(other.size || Object.keys(values).length ? 'The connection string has a part that isn\'t Name=value.' : NOT_A_CONNECTION_STRING);
    }
    const name = part.slice(0, equals).toLowerCase();
    const value = part.slice(equals + 1);
    if (!(name in KNOWN)) {
      other.add(name);
      continue;
    }
    const known = name as Known;
    if (known in values) return fail(`The connection string has ${KNOWN[known]} twice.`);
    values[known] = value;
  }

  const found = Object.keys(values).length;
  if (found === 0) {
    return fail(other.has('accountkey') || other.has('accountname') ? STORAGE_CONNECTION_STRING : NOT_A_CONNECTION_STRING);
  }
  const missing = REQUIRED.filter((name) => !values[name]);
  if (missing.length) return fail(`The connection string has no ${either(missing.map((name) => KNOWN[name]))}.`);

  const endpoint = values.endpoint ?? '';
  const host = /^[a-z][a-z0-9+.-]*:\/\/([^/:?#]+)/i.exec(endpoint)?.[1]?.toLowerCase();
  if (!host) {
    return fail("The connection string's Endpoint isn't a URL like sb://<namespace>.servicebus.windows.net/.");
  }
  const namespace = host.endsWith(SERVICE_BUS_SUFFIX) ? host.slice(0, -SERVICE_BUS_SUFFIX.length) : undefined;

  const value: ServiceBusConnectionString = {
    endpoint,
    keyName: values.sharedaccesskeyname ?? '',
    key: values.sharedaccesskey ?? '',
  };
  if (namespace && !namespace.includes('.')) value.namespace = namespace;
  if (values.entitypath) value.entityPath = values.entitypath;
  return { ok: true, value };
}
