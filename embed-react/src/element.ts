/**
 * `<pushrail-embed>`: the same embed as a framework-free custom element, for Vue, Angular, Svelte
 * or plain HTML. `@pushrail/embed-react/element` bundles React, so one script is all a page loads;
 * importing it defines the element (`definePushrailEmbed()` does it under another name too).
 *
 *   <pushrail-embed api-base="https://events.example.com"></pushrail-embed>
 *   <script type="module">
 *     import '@pushrail/embed-react/element';
 *     document.querySelector('pushrail-embed').fetchToken = () => fetch('/api/token').then(...);
 *   </script>
 *
 * It renders into its own (open) shadow root, with the stylesheet adopted there: the page's CSS
 * doesn't reach in, and the embed's doesn't leak out.
 */

import { createElement } from 'react';
import { createRoot, type Root } from 'react-dom/client';

import type { TabId } from './context.js';
import { PushrailEmbed } from './PushrailEmbed.js';
import css from './styles.css?inline';
import type { PushrailClassNames, PushrailTheme } from './theme.js';
import type { SignedOutReason } from './token.js';

/** `detail` of the `pushrail-signed-out` event the element dispatches (bubbling, composed). */
export interface PushrailSignedOutDetail {
  reason: SignedOutReason;
  message: string;
}

const HOST_CSS = ':host{display:block}:host([hidden]){display:none}';

let sheet: CSSStyleSheet | null = null;

/** The stylesheet, shared by every instance where constructable stylesheets exist (no inline <style>, so no CSP nonce). */
function adoptStyles(shadow: ShadowRoot): void {
  if ('adoptedStyleSheets' in shadow && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(HOST_CSS + css);
    }
    shadow.adoptedStyleSheets = [sheet];
    return;
  }
  const style = document.createElement('style');
  style.textContent = HOST_CSS + css;
  shadow.appendChild(style);
}

// Server-side rendering imports this module too: define nothing without a DOM.
const Base: typeof HTMLElement = typeof HTMLElement === 'undefined' ? (Object as unknown as typeof HTMLElement) : HTMLElement;

const TABS: readonly TabId[] = ['destinations', 'credentials', 'deliveries', 'replay', 'audit'];

export class PushrailEmbedElement extends Base {
  static readonly observedAttributes = ['api-base', 'initial-tab', 'locale'];

  #fetchToken: (() => Promise<string>) | undefined;
  #theme: PushrailTheme | undefined;
  #classNames: PushrailClassNames | undefined;
  #root: Root | null = null;
  #container: HTMLDivElement | null = null;
  /** The latest callback, so a new `fetchToken` doesn't remount (the session keeps going). */
  readonly #callToken = (): Promise<string> => {
    const fetchToken = this.#fetchToken;
    if (!fetchToken) return Promise.reject(new Error('<pushrail-embed> has no fetchToken.'));
    return fetchToken();
  };
  readonly #signedOut = (reason: SignedOutReason, message: string): void => {
    this.dispatchEvent(
      new CustomEvent<PushrailSignedOutDetail>('pushrail-signed-out', { detail: { reason, message }, bubbles: true, composed: true }),
    );
  };

  /** Where Pushrail answers (the `api-base` attribute). */
  get apiBase(): string {
    return this.getAttribute('api-base') ?? '';
  }
  set apiBase(value: string) {
    this.setAttribute('api-base', value);
  }

  /** Returns a Promise of a session token from your backend: the React prop's contract. */
  get fetchToken(): (() => Promise<string>) | undefined {
    return this.#fetchToken;
  }
  set fetchToken(value: (() => Promise<string>) | undefined) {
    const first = !this.#fetchToken;
    this.#fetchToken = typeof value === 'function' ? value : undefined;
    // A swapped callback is picked up at the next call; the first one starts the session.
    if (first) this.#render();
  }

  get theme(): PushrailTheme | undefined {
    return this.#theme;
  }
  set theme(value: PushrailTheme | undefined) {
    this.#theme = value;
    this.#render();
  }

  get classNames(): PushrailClassNames | undefined {
    return this.#classNames;
  }
  set classNames(value: PushrailClassNames | undefined) {
    this.#classNames = value;
    this.#render();
  }

  connectedCallback(): void {
    // Properties set before the element was defined sit on the instance: route them through the setters.
    for (const name of ['fetchToken', 'theme', 'classNames', 'apiBase'] as const) {
      if (Object.prototype.hasOwnProperty.call(this, name)) {
        const value: unknown = Reflect.get(this, name);
        Reflect.deleteProperty(this, name);
        Reflect.set(this, name, value);
      }
    }
    if (!this.#container) {
      const shadow = this.shadowRoot ?? this.attachShadow({ mode: 'open' });
      adoptStyles(shadow);
      this.#container = document.createElement('div');
      shadow.appendChild(this.#container);
    }
    this.#render();
  }

  disconnectedCallback(): void {
    // Moved within the page (disconnected and connected in one task): keep the session.
    queueMicrotask(() => {
      if (this.isConnected) return;
      this.#root?.unmount();
      this.#root = null;
    });
  }

  attributeChangedCallback(): void {
    this.#render();
  }

  #render(): void {
    if (!this.isConnected || !this.#container) return;
    const baseUrl = this.apiBase;
    if (!baseUrl || !this.#fetchToken) return;
    const tab = this.getAttribute('initial-tab') as TabId | null;
    this.#root ??= createRoot(this.#container);
    this.#root.render(
      createElement(PushrailEmbed, {
        // A new Pushrail (or customer) starts a new session.
        key: baseUrl,
        baseUrl,
        fetchToken: this.#callToken,
        theme: this.#theme,
        classNames: this.#classNames,
        initialTab: tab && TABS.includes(tab) ? tab : undefined,
        locale: this.getAttribute('locale') ?? undefined,
        onSignedOut: this.#signedOut,
        // The stylesheet is in the shadow root, not document.head.
        injectStyles: false,
      }),
    );
  }
}

/** Defines the element (once) as `name`, `pushrail-embed` by default. */
export function definePushrailEmbed(name = 'pushrail-embed'): void {
  if (typeof customElements === 'undefined' || customElements.get(name)) return;
  // Each name needs its own class.
  customElements.define(name, name === 'pushrail-embed' ? PushrailEmbedElement : class extends PushrailEmbedElement {});
}

definePushrailEmbed();

declare global {
  interface HTMLElementTagNameMap {
    'pushrail-embed': PushrailEmbedElement;
  }
}
