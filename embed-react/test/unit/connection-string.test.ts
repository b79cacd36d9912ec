/** Azure Service Bus connection strings taken apart: what reads, what is refused and how it is said. */

import { describe, expect, it } from 'vitest';

import {
  NOT_A_CONNECTION_STRING,
  parseServiceBusConnectionString,
  SAS_TOKEN_REFUSED,
  STORAGE_CONNECTION_STRING,
  type ConnectionStringResult,
} from '../../src/connectionString.js';

/** A key as the portal shows one: 32 bytes in base64, ending in `=`. */
const KEY = 'Zm9vYmFyYmF6cXV4K3Rlc3Qva2V5PT1wdXNocmFpbA+/=';
const PORTAL = `Endpoint=sb://acme-events.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${KEY}`;

function value(result: ConnectionStringResult) {
  if (!result.ok) throw new Error(`refused: ${result.error}`);
  return result.value;
}

function error(result: ConnectionStringResult): string {
  if (result.ok) throw new Error('read, though it should have been refused');
  return result.error;
}

describe('parseServiceBusConnectionString', () => {
  it('reads a namespace policy’s connection string as the portal shows it', () => {
    expect(value(parseServiceBusConnectionString(PORTAL))).toEqual({
      endpoint: 'sb://acme-events.servicebus.windows.net/',
      namespace: 'acme-events',
      keyName: 'RootManageSharedAccessKey',
      key: KEY,
    });
  });

  it('reads an entity policy’s, with its EntityPath', () => {
    const parsed = value(parseServiceBusConnectionString(`${PORTAL};EntityPath=orders`));
    expect(parsed.entityPath).toBe('orders');
    expect(parsed.namespace).toBe('acme-events');
    expect(parsed.key).toBe(KEY);
  });

  it('keeps every = of a base64 key (a value runs from the first = to the next ;)', () => {
    const parsed = value(parseServiceBusConnectionString('Endpoint=sb://a.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=ab==cd=='));
    expect(parsed.key).toBe('ab==cd==');
  });

  it('takes names in any case and order, a trailing ;, empty parts and unknown parts', () => {
    const parsed = value(
      parseServiceBusConnectionString(
        `sharedaccesskey=${KEY};;ENTITYPATH=orders;TransportType=Amqp;sharedAccessKeyName=send;endpoint=sb://Acme-Events.ServiceBus.Windows.net;`,
      ),
    );
    expect(parsed).toEqual({
      endpoint: 'sb://Acme-Events.ServiceBus.Windows.net',
      namespace: 'acme-events',
      keyName: 'send',
      key: KEY,
      entityPath: 'orders',
    });
  });

  it('ignores whitespace: around the string, around parts, and the line breaks of a wrapped paste', () => {
    const wrapped = `  \n Endpoint = sb://acme-events.servicebus.windows.net/ ;\n SharedAccessKeyName=send;  SharedAccessKey=${KEY.slice(0, 20)}\n${KEY.slice(20)} ;\t\n`;
    const parsed = value(parseServiceBusConnectionString(wrapped));
    expect(parsed.keyName).toBe('send');
    expect(parsed.key).toBe(KEY);
    expect(parsed.namespace).toBe('acme-events');
  });

  it('drops quotes around a string copied from a config file', () => {
    expect(value(parseServiceBusConnectionString(`"${PORTAL}"`)).key).toBe(KEY);
    expect(value(parseServiceBusConnectionString(`'${PORTAL};'`)).keyName).toBe('RootManageSharedAccessKey');
  });

  it('leaves the namespace out when the endpoint is not <namespace>.servicebus.windows.net', () => {
    const china = value(parseServiceBusConnectionString(`Endpoint=sb://acme.servicebus.chinacloudapi.cn/;SharedAccessKeyName=send;SharedAccessKey=${KEY}`));
    expect(china.namespace).toBeUndefined();
    expect(china.endpoint).toBe('sb://acme.servicebus.chinacloudapi.cn/');
    const local = value(parseServiceBusConnectionString(`Endpoint=sb://localhost:5672;SharedAccessKeyName=send;SharedAccessKey=${KEY}`));
    expect(local.namespace).toBeUndefined();
  });

  it('names each missing part', () => {
    expect(error(parseServiceBusConnectionString('Endpoint=sb://a.servicebus.windows.net/;SharedAccessKeyName=send'))).toBe(
      'The connection string has no SharedAccessKey.',
    );
    expect(error(parseServiceBusConnectionString(`Endpoint=sb://a.servicebus.windows.net/;SharedAccessKey=${KEY}`))).toBe(
      'The connection string has no SharedAccessKeyName.',
    );
    expect(error(parseServiceBusConnectionString(`SharedAccessKeyName=send;SharedAccessKey=${KEY}`))).toBe(
      'The connection string has no Endpoint.',
    );
    expect(error(parseServiceBusConnectionString('Endpoint=sb://a.servicebus.windows.net/'))).toBe(
      'The connection string has no SharedAccessKeyName or SharedAccessKey.',
    );
    expect(error(parseServiceBusConnectionString('EntityPath=orders'))).toBe(
      'The connection string has no Endpoint, SharedAccessKeyName or SharedAccessKey.',
    );
    // An empty value is as good as none.
    expect(error(parseServiceBusConnectionString('Endpoint=sb://a.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=;'))).toBe(
      'The connection string has no SharedAccessKey.',
    );
  });

  it('refuses shared access signatures (tokens that expire), whichever way they come', () => {
    const token = 'SharedAccessSignature sr=https%3A%2F%2Facme.servicebus.windows.net%2Forders&sig=c2ln%3D&se=1772877900&skn=send';
    for (const text of [
      token,
      `  ${token}`,
      `Endpoint=sb://acme.servicebus.windows.net/;SharedAccessSignature=${token}`,
      `Endpoint=sb://acme.servicebus.windows.net/;sharedaccesssignature=sr=x&sig=y;EntityPath=orders`,
    ]) {
      const message = error(parseServiceBusConnectionString(text));
      expect(message).toBe(SAS_TOKEN_REFUSED);
      expect(message).toContain('SharedAccessKey');
    }
  });

  it('says so when what was pasted is no connection string, or another service’s', () => {
    expect(error(parseServiceBusConnectionString(KEY))).toBe(NOT_A_CONNECTION_STRING); // the bare key
    expect(error(parseServiceBusConnectionString('hello world'))).toBe(NOT_A_CONNECTION_STRING);
    expect(error(parseServiceBusConnectionString('https://acme.servicebus.windows.net/orders'))).toBe(NOT_A_CONNECTION_STRING);
    expect(
      error(
        parseServiceBusConnectionString(
          `DefaultEndpointsProtocol=https;AccountName=acmeevents;AccountKey=${KEY};EndpointSuffix=core.windows.net`,
        ),
      ),
    ).toBe(STORAGE_CONNECTION_STRING);
    expect(error(parseServiceBusConnectionString('   '))).toBe('Paste a connection string.');
    expect(error(parseServiceBusConnectionString(`${PORTAL};garbage`))).toBe("The connection string has a part that isn't Name=value.");
    expect(error(parseServiceBusConnectionString(`${PORTAL};SharedAccessKey=${KEY}`))).toBe('The connection string has SharedAccessKey twice.');
    expect(error(parseServiceBusConnectionString(`Endpoint=acme.servicebus.windows.net;SharedAccessKeyName=send;SharedAccessKey=${KEY}`))).toMatch(
      /Endpoint isn't a URL/,
    );
  });

  it('never repeats the key (or any other part) in a message', () => {
    const secret = 'S3cr3tK3yMaterial+/AAAAAAAAAAAAAAAAAAAAAAAA=';
    const refused = [
      `Endpoint=sb://a.servicebus.windows.net/;SharedAccessKey=${secret}`,
      `SharedAccessKeyName=send;SharedAccessKey=${secret}`,
      `Endpoint=nope;SharedAccessKeyName=send;SharedAccessKey=${secret}`,
      `Endpoint=sb://a.servicebus.windows.net/;SharedAccessKeyName=send;${secret}`,
      `${PORTAL};SharedAccessKey=${secret}`,
      `AccountName=a;AccountKey=${secret}`,
      secret,
      `SharedAccessSignature sr=x&sig=${secret}`,
    ];
    for (const text of refused) {
      const message = error(parseServiceBusConnectionString(text));
      expect(message).not.toContain(secret);
      expect(message).not.toContain(secret.slice(0, 12));
      expect(message).not.toContain('send');
    }
  });
});
