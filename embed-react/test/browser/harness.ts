/**
 * Processes for the browser tests: a fresh Pushrail host, a switchable webhook receiver, the demo
 * backend and Chromium. Every process started here is killed in `stopAll()`, and again on exit.
 */

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const PACKAGE_DIR = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const REPO_DIR = resolve(PACKAGE_DIR, '..');
export const PUSHRAIL_BIN = process.env.PUSHRAIL_BIN ?? '/var/tmp/pushrail-target/debug/pushrail';
export const PLUGINS_DIR = process.env.PUSHRAIL_PLUGINS_DIR ?? join(REPO_DIR, 'plugins', 'dist');
export const ARTIFACTS_DIR = process.env.PUSHRAIL_ARTIFACTS_DIR ?? join(REPO_DIR, 'test-artifacts', 'embed');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void> | void)[] = [];

function killAllSync(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
process.once('exit', killAllSync);

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => {
        resolvePort(port);
      });
    });
  });
}

/** Polls until `check` returns a value (not undefined/false) or the timeout passes. */
export async function poll<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 400) output.shift();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (code !== 0 && code !== null && signal === null) {
      process.stderr.write(`[${name}] exited with ${String(code)}\n${output.join('').slice(-4000)}\n`);
    }
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => { r(); }));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

/**
 * The AWS account the host is told is its own, so that customers can set up `aws_role`
 * credentials (the keys are never used: STS is only called when delivering with a role).
 */
export const AWS_ACCOUNT_ID = '123456789012';

export interface Host {
  url: string;
  apiKey: string;
  dataDir: string;
}

export interface HostOptions {
  /** `--retry-schedule` (default `0s,500ms,500ms`: three attempts, then failed). */
  retrySchedule?: string;
  /** More `pushrail serve` flags, e.g. `['--auto-disable-after', '2s']`. */
  serveArgs?: string[];
}

export async function startHost(options: HostOptions = {}): Promise<Host> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pushrail-embed-e2e-'));
  cleanups.push(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });
  const { stdout } = await promisify(execFile)(PUSHRAIL_BIN, ['--data-dir', dataDir, 'tenant', 'create', '--name', 'Acme'], {
    env: { ...process.env, PUSHRAIL_LOG: 'warn' },
  });
  const { api_key: apiKey } = JSON.parse(stdout) as { api_key: string };
  const port = await freePort();
  const child = start(
    'pushrail',
    PUSHRAIL_BIN,
    [
      '--data-dir', dataDir,
      'serve',
      '--listen', `127.0.0.1:${String(port)}`,
      '--plugins-dir', PLUGINS_DIR,
      '--allow-egress', '127.0.0.0/8',
      '--retry-schedule', options.retrySchedule ?? '0s,500ms,500ms',
      '--aws-access-key-id', 'AKIAEMBEDE2ETEST0000',
      '--aws-secret-access-key', 'embed-e2e-not-a-real-secret',
      '--aws-account-id', AWS_ACCOUNT_ID,
      ...(options.serveArgs ?? []),
    ],
    { PUSHRAIL_LOG: 'warn' },
  );
  cleanups.push(() => stop(child));
  const url = `http://127.0.0.1:${String(port)}`;
  await poll('the host to answer /healthz', async () => {
    if (child.exitCode !== null) throw new Error('pushrail serve exited');
    const response = await fetch(`${url}/healthz`);
    return response.ok && (await response.text()).trim() === 'ok';
  }, 30_000);
  return { url, apiKey, dataDir };
}

export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  answeredWith: number;
}

export interface Receiver {
  url: string;
  /** The status every request is answered with from now on. */
  status: number;
  requests: ReceivedRequest[];
}

export async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', status: 200, requests: [] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const status = receiver.status;
      receiver.requests.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString(), answeredWith: status });
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(status < 300 ? { received: true } : { error: 'receiver is down for maintenance' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  receiver.url = `http://127.0.0.1:${String(port)}/hooks/acme`;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => { r(); });
      }),
  );
  return receiver;
}

export async function startDemo(host: Host, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const port = await freePort();
  const child = start('demo', process.execPath, [join(PACKAGE_DIR, 'demo', 'server.mjs')], {
    PORT: String(port),
    PUSHRAIL_URL: host.url,
    PUSHRAIL_API_KEY: host.apiKey,
    ...env,
  });
  cleanups.push(() => stop(child));
  const url = `http://127.0.0.1:${String(port)}`;
  await poll('the demo backend', async () => {
    if (child.exitCode !== null) throw new Error('the demo backend exited');
    return (await fetch(`${url}/api/me`)).ok;
  });
  return url;
}

/** Registers extra teardown (the browser), run before the processes are stopped. */
export function onStop(cleanup: () => Promise<void> | void): void {
  cleanups.push(cleanup);
}

export async function stopAll(): Promise<void> {
  // Last started, first stopped; a failing step does not keep the others from running.
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (error) {
      process.stderr.write(`cleanup failed: ${String(error)}\n`);
    }
  }
  killAllSync();
}
