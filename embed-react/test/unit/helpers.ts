/** Test helpers: unsigned JWTs with chosen claims, and JSON responses. */

function base64url(text: string): string {
  return Buffer.from(text).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

let counter = 0;

/** A JWT-shaped token expiring `ttlSeconds` from now (the client never verifies the signature). */
export function jwt(ttlSeconds: number, now = Date.now()): string {
  counter += 1;
  const iat = Math.floor(now / 1000);
  const header = base64url(JSON.stringify({ alg: 'EdDSA', typ: 'JWT' }));
  const payload = base64url(JSON.stringify({ iss: 'pushrail', sub: 'sub_1', sid: `ses_${String(counter)}`, iat, exp: iat + ttlSeconds }));
  return `${header}.${payload}.c2lnbmF0dXJl`;
}

export function json(status: number, body?: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

export function apiError(status: number, code: string, message: string, details?: { field: string; message: string }[]) {
  return json(status, { error: { code, message, ...(details ? { details } : {}) } });
}
