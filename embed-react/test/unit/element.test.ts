/** `<pushrail-embed>` in happy-dom: configured by attribute and properties, signed-out event, unmount on removal. */

import { afterEach, describe, expect, it, vi } from 'vitest';

import { definePushrailEmbed, PushrailEmbedElement, type PushrailSignedOutDetail } from '../../src/element.js';
import { json, jwt } from './helpers.js';

afterEach(() => {
  document.body.innerHTML = '';
  vi.unstubAllGlobals();
});

function stubApi() {
  const fetchMock = vi.fn((input: string) => {
    const url = new URL(input);
    const path = url.pathname.replace(/^\/embed\/v1/, '');
    if (path === '/destinations') return Promise.resolve(json(200, { items: [] }));
    if (path === '/destination-types') return Promise.resolve(json(200, []));
    return Promise.resolve(json(200, { items: [] }));
  });
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}

async function until(check: () => boolean): Promise<void> {
  await vi.waitFor(() => {
    expect(check()).toBe(true);
  });
}

describe('<pushrail-embed>', () => {
  it('is defined on import, once, and under another name on request', () => {
    expect(customElements.get('pushrail-embed')).toBe(PushrailEmbedElement);
    definePushrailEmbed();
    definePushrailEmbed('acme-events');
    expect(customElements.get('acme-events')).toBeDefined();
  });

  it('renders the embed in its shadow root once api-base and fetchToken are set, and unmounts when removed', async () => {
    const fetchMock = stubApi();
    const element = document.createElement('pushrail-embed');
    element.setAttribute('api-base', 'https://pushrail.test');
    document.body.appendChild(element);
    // Nothing to do without a token callback.
    expect(element.shadowRoot?.querySelector('.pr-embed')).toBeNull();
    const fetchToken = vi.fn(() => Promise.resolve(jwt(900)));
    element.fetchToken = fetchToken;
    element.theme = { colors: { primary: '#123456' } };
    await until(() => !!element.shadowRoot?.querySelector('.pr-embed[data-pushrail-state="ready"]'));
    const root = element.shadowRoot?.querySelector<HTMLElement>('.pr-embed');
    expect(root?.style.getPropertyValue('--pr-color-primary')).toBe('#123456');
    await until(() => fetchMock.mock.calls.some(([url]) => url === 'https://pushrail.test/embed/v1/destinations'));
    // The stylesheet is in the shadow root, not the document.
    expect(document.getElementById('pushrail-embed-styles')).toBeNull();
    // A new callback is used from then on, without a new session.
    element.fetchToken = () => Promise.resolve(jwt(900));
    expect(fetchToken).toHaveBeenCalledTimes(1);

    element.remove();
    await until(() => element.shadowRoot?.querySelector('.pr-embed') === null);
  });

  it('picks up a property set before the element was defined', async () => {
    stubApi();
    const element = document.createElement('pushrail-late');
    (element as unknown as { fetchToken: () => Promise<string> }).fetchToken = () => Promise.resolve(jwt(900));
    element.setAttribute('api-base', 'https://pushrail.test');
    document.body.appendChild(element);
    definePushrailEmbed('pushrail-late');
    await until(() => !!element.shadowRoot?.querySelector('.pr-embed[data-pushrail-state="ready"]'));
  });

  it('says when the session ends, with a pushrail-signed-out event', async () => {
    stubApi();
    const element = document.createElement('pushrail-embed');
    const events: PushrailSignedOutDetail[] = [];
    document.body.addEventListener('pushrail-signed-out', (event) => {
      events.push((event as CustomEvent<PushrailSignedOutDetail>).detail);
    });
    element.apiBase = 'https://pushrail.test';
    element.fetchToken = () => Promise.reject(new Error('Not allowed'));
    document.body.appendChild(element);
    await until(() => events.length === 1);
    expect(events[0]).toEqual({ reason: 'token_rejected', message: 'Not allowed' });
    expect(element.shadowRoot?.textContent).toContain("You're signed out");
  });
});
