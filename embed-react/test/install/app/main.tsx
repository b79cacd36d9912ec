/**
 * The whole of a fresh app that installed @pushrail/embed-react from its packed tarball (see
 * ../install.e2e.test.ts). `?pushrail=` is where the host answers; `/token` is the app's backend.
 */

import { PushrailEmbed } from '@pushrail/embed-react';
import { StrictMode, version } from 'react';
import { createRoot } from 'react-dom/client';

const baseUrl = new URLSearchParams(window.location.search).get('pushrail') ?? '';

async function fetchToken(): Promise<string> {
  const response = await fetch('/token');
  if (!response.ok) throw new Error(`token endpoint answered ${String(response.status)}`);
  return ((await response.json()) as { token: string }).token;
}

// Which React the bundle really carries, for the test to check.
document.documentElement.dataset.reactVersion = version;

const root = document.getElementById('root');
if (!root) throw new Error('no #root');
createRoot(root).render(
  <StrictMode>
    <PushrailEmbed baseUrl={baseUrl} fetchToken={fetchToken} />
  </StrictMode>,
);
