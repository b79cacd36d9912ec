#!/usr/bin/env node
// The demo vendor's backend: holds the tenant API key, signs customers in (a cookie, no password:
// it is a demo), mints Pushrail session tokens for the signed-in customer, and offers the
// operator actions (publish an event, revoke a customer's sessions). Serves the built dashboard.
//
//   PUSHRAIL_URL       where the backend reaches Pushrail   (default http://127.0.0.1:8080)
//   PUSHRAIL_PUBLIC_URL where browsers reach it             (default PUSHRAIL_URL)
//   PUSHRAIL_API_KEY   the tenant API key                   (required)
//   PORT               where this listens, on 127.0.0.1     (default 5173)
//   DEMO_CUSTOMERS     comma-separated external ids offered at sign-in
//   DEMO_TOKEN_TTL     session token lifetime in seconds    (default: Pushrail's, 900)

import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PUSHRAIL_URL = (process.env.PUSHRAIL_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const PUBLIC_URL = (process.env.PUSHRAIL_PUBLIC_URL ?? PUSHRAIL_URL).replace(/\/+$/, '');
const API_KEY = process.env.PUSHRAIL_API_KEY ?? '';
const PORT = Number(process.env.PORT ?? 5173);
const HOST = process.env.HOST ?? '127.0.0.1';
const CUSTOMERS = (process.env.DEMO_CUSTOMERS ?? 'acme-customer-a,acme-customer-b')
  .split(',')
  .map((c) => c.trim())
  .filter(Boolean);
const TOKEN_TTL = process.env.DEMO_TOKEN_TTL ? Number(process.env.DEMO_TOKEN_TTL) : undefined;
const DIST = resolve(fileURLToPath(new URL('./dist', import.meta.url)));

if (!API_KEY) {
  console.error('PUSHRAIL_API_KEY is not set: create a tenant with `pushrail tenant create --name Acme` and export its api_key.');
  process.exit(2);
}

/** Demo sign-ins: cookie value → external id. */
const sessions = new Map();
/** Customers whose Pushrail sessions an operator revoked: no tokens until they sign in again. */
const revoked = new Set();

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}

function fail(res, status, code, message) {
  send(res, status, { error: { code, message } });
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

function cookie(req, name) {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

function customerOf(req) {
  const sid = cookie(req, 'demo_sid');
  return sid ? (sessions.get(sid) ?? null) : null;
}

async function pushrail(method, path, body) {
  const response = await fetch(`${PUSHRAIL_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: { code: 'bad_gateway', message: text.slice(0, 200) } };
  }
  return { status: response.status, data };
}

function validExternalId(value) {
  return typeof value === 'string' && value.trim().length > 0 && Buffer.byteLength(value) <= 255;
}

async function handleApi(req, res, path) {
  const customer = customerOf(req);

  if (req.method === 'GET' && path === '/api/me') {
    return send(res, 200, { customer, customers: CUSTOMERS, pushrailUrl: PUBLIC_URL });
  }

  if (req.method === 'POST' && path === '/api/sign-in') {
    const { external_id: externalId } = await readJson(req);
    if (!validExternalId(externalId)) return fail(res, 422, 'invalid', 'Give a customer external id.');
    const id = externalId.trim();
    const sid = randomBytes(24).toString('base64url');
    sessions.set(sid, id);
    revoked.delete(id); // Signing in again is what lifts an operator's revocation.
    return send(res, 200, { customer: id }, {
      'Set-Cookie': `demo_sid=${sid}; Path=/; HttpOnly; SameSite=Lax`,
    });
  }

  if (req.method === 'POST' && path === '/api/sign-out') {
    const sid = cookie(req, 'demo_sid');
    if (sid) sessions.delete(sid);
    return send(res, 200, {}, { 'Set-Cookie': 'demo_sid=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0' });
  }

  // The endpoint behind the embed's fetchToken: a session token for the signed-in customer only.
  if (req.method === 'GET' && path === '/api/token') {
    if (!customer) return fail(res, 401, 'signed_out', 'Sign in to Acme first.');
    if (revoked.has(customer)) {
      return fail(res, 403, 'sessions_revoked', 'Your access was revoked by Acme. Sign in again to continue.');
    }
    const body = { external_id: customer, ...(TOKEN_TTL ? { ttl_seconds: TOKEN_TTL } : {}) };
    const answer = await pushrail('POST', '/v1/sessions', body);
    if (answer.status !== 201) return send(res, 502, answer.data);
    return send(res, 200, { token: answer.data.token, expires_at: answer.data.expires_at });
  }

  // Operator actions. A real vendor keeps these behind its own staff authentication.
  if (req.method === 'POST' && path === '/api/operator/events') {
    const { external_id: externalId, type, payload } = await readJson(req);
    if (!validExternalId(externalId)) return fail(res, 422, 'invalid', 'Give a customer external id.');
    const event = {
      external_id: externalId,
      type: typeof type === 'string' && type ? type : 'order.created',
      payload: payload ?? {
        order_id: `ord_${randomUUID().slice(0, 8)}`,
        amount: 4200,
        currency: 'usd',
        customer: externalId,
      },
    };
    const answer = await pushrail('POST', '/v1/events', event);
    return send(res, answer.status, answer.data);
  }

  if (req.method === 'POST' && path === '/api/operator/revoke') {
    const { external_id: externalId } = await readJson(req);
    if (!validExternalId(externalId)) return fail(res, 422, 'invalid', 'Give a customer external id.');
    const answer = await pushrail('POST', `/v1/sub-tenants/${encodeURIComponent(externalId)}/revoke-sessions`);
    // Refuse new tokens even when Pushrail did not know the customer yet (404): revoked is revoked.
    if (answer.status === 200 || answer.status === 404) {
      revoked.add(externalId);
      return send(res, 200, { revoked: answer.data?.revoked ?? 0 });
    }
    return send(res, answer.status, answer.data);
  }

  return fail(res, 404, 'not_found', 'No such demo endpoint.');
}

function serveStatic(req, res, path) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, 'method_not_allowed', 'GET only');
  let file = normalize(join(DIST, decodeURIComponent(path)));
  if (!file.startsWith(DIST)) return fail(res, 404, 'not_found', 'Not found');
  if (!existsSync(file) || statSync(file).isDirectory()) file = join(DIST, 'index.html');
  if (!existsSync(file)) {
    return fail(res, 503, 'not_built', 'The demo is not built: run `npm run build:demo` (or `npm run demo`).');
  }
  const immutable = file.includes(`${DIST}/assets/`);
  res.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file).pipe(res);
}

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://demo').pathname;
  const handler = path.startsWith('/api/') ? handleApi(req, res, path) : Promise.resolve(serveStatic(req, res, path));
  handler.catch((error) => {
    console.error(error);
    if (!res.headersSent) fail(res, 500, 'internal', error instanceof Error ? error.message : 'internal error');
    else res.end();
  });
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  console.log(`Pushrail embed demo running at http://${HOST}:${port}/ (Pushrail at ${PUSHRAIL_URL})`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
