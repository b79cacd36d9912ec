/** `<PushrailEmbed>`: a customer's destinations, credentials, delivery log and replays, in the vendor's dashboard. */

import { QueryClientProvider } from '@tanstack/react-query';
import {
  useCallback,
  useEffect,
  useId,
  useInsertionEffect,
  useMemo,
  useRef,
  useState,
  type CSSProperties,
  type KeyboardEvent,
  type RefObject,
} from 'react';

import type { ApiClient } from './api.js';
import { EmbedContext, type EmbedContextValue, type Flash, type TabId } from './context.js';
import { AuditPanel, emptyAuditFilters, type AuditLogFilters } from './screens/Audit.js';
import { CredentialsPanel } from './screens/Credentials.js';
import { DeliveriesPanel, emptyFilters, type LogFilters } from './screens/Deliveries.js';
import { DestinationsPanel } from './screens/Destinations.js';
import { ReplayPanel } from './screens/Replay.js';
import css from './styles.css?inline';
import { cx, themeToCssVars, type PushrailClassNames, type PushrailTheme } from './theme.js';
import { PushrailProvider, usePushrailSession } from './session.js';
import type { SignedOutReason } from './token.js';
import { Button, ClassNamesContext, Icon, Loading, Notice, useClassNames } from './ui.js';

export interface PushrailEmbedProps {
  /** Where Pushrail answers, e.g. `https://events.example.com`; the embed calls `${baseUrl}/embed/v1/...`. */
  baseUrl: string;
  /**
   * Returns a session token for the signed-in customer, minted by your backend with
   * `POST /v1/sessions`. Called on mount, about a minute before each token expires, and when
   * Pushrail refuses a token. Reject it (e.g. your backend answers 401/403) to sign the embed out.
   */
  fetchToken: () => Promise<string>;
  /** Design tokens, applied as CSS custom properties on the root element. */
  theme?: PushrailTheme;
  /** Extra class names on the building blocks, for overrides beyond the tokens. */
  classNames?: PushrailClassNames;
  /** The tab shown first. */
  initialTab?: TabId;
  /** BCP 47 locale for dates; the browser's by default. */
  locale?: string;
  /** Called when the embed signs out: `fetchToken` rejected, or Pushrail refused a fresh token. */
  onSignedOut?: (reason: SignedOutReason, message: string) => void;
  /**
   * Injects the stylesheet into `document.head` (default). Set false under a Content-Security-Policy
   * that forbids inline styles, and load `@pushrail/embed-react/styles.css` yourself.
   */
  injectStyles?: boolean;
  /** Nonce for the injected `<style>` element, for a CSP with `style-src 'nonce-…'`. */
  styleNonce?: string;
}

const STYLE_ID = 'pushrail-embed-styles';
let styleUsers = 0;

function useStyles(enabled: boolean, nonce: string | undefined): void {
  useInsertionEffect(() => {
    if (!enabled || typeof document === 'undefined') return;
    styleUsers += 1;
    if (!document.getElementById(STYLE_ID)) {
      const style = document.createElement('style');
      style.id = STYLE_ID;
      if (nonce) style.nonce = nonce;
      style.textContent = css;
      document.head.appendChild(style);
    }
    return () => {
      styleUsers -= 1;
      if (styleUsers === 0) document.getElementById(STYLE_ID)?.remove();
    };
  }, [enabled, nonce]);
}

const TABS: { id: TabId; label: string }[] = [
  { id: 'destinations', label: 'Destinations' },
  { id: 'credentials', label: 'Credentials' },
  { id: 'deliveries', label: 'Delivery log' },
  { id: 'replay', label: 'Replay' },
  { id: 'audit', label: 'Audit log' },
];

export function PushrailEmbed({
  baseUrl,
  fetchToken,
  onSignedOut,
  injectStyles = true,
  styleNonce,
  ...view
}: PushrailEmbedProps) {
  useStyles(injectStyles, styleNonce);
  return (
    <PushrailProvider baseUrl={baseUrl} fetchToken={fetchToken} onSignedOut={onSignedOut}>
      <EmbedView {...view} />
    </PushrailProvider>
  );
}

function EmbedView({
  theme,
  classNames = {},
  initialTab = 'destinations',
  locale,
}: Pick<PushrailEmbedProps, 'theme' | 'classNames' | 'initialTab' | 'locale'>) {
  const { api, auth, retry, queryClient } = usePushrailSession();
  const style = useMemo(() => themeToCssVars(theme) as CSSProperties, [theme]);
  const rootRef = useRef<HTMLDivElement>(null);

  return (
    <ClassNamesContext.Provider value={classNames}>
      <div
        ref={rootRef}
        className={cx('pr-embed', classNames.root)}
        style={style}
        data-density={theme?.density ?? 'comfortable'}
        data-pushrail-state={auth.status}
      >
        {auth.status === 'loading' ? (
          <Loading label="Connecting…" />
        ) : auth.status === 'signed_out' ? (
          <SignedOut reason={auth.reason} message={auth.message} onRetry={retry} />
        ) : (
          <QueryClientProvider client={queryClient}>
            <Main api={api} locale={locale} initialTab={initialTab} rootRef={rootRef} />
          </QueryClientProvider>
        )}
      </div>
    </ClassNamesContext.Provider>
  );
}

function SignedOut({ reason, message, onRetry }: { reason: SignedOutReason; message: string; onRetry: () => void }) {
  const titleId = useId();
  return (
    <div className="pr-signed-out" role="region" aria-labelledby={titleId}>
      <span className="pr-signed-out-icon">
        <Icon name="lock" />
      </span>
      <div role="status">
        <h2 className="pr-title" id={titleId}>
          You're signed out
        </h2>
      </div>
      <p className="pr-description">
        {reason === 'token_rejected'
          ? 'Your session has ended and could not be renewed. Sign in again to manage your event destinations.'
          : 'Your session is no longer valid. It may have been revoked. Sign in again to continue.'}
      </p>
      {message ? <p className="pr-signed-out-detail">{message}</p> : null}
      <Button variant="secondary" icon="refresh" onClick={onRetry}>
        Try again
      </Button>
    </div>
  );
}

function Main({
  api,
  locale,
  initialTab,
  rootRef,
}: {
  api: ApiClient;
  locale?: string;
  initialTab: TabId;
  rootRef: RefObject<HTMLDivElement | null>;
}) {
  const idPrefix = useId().replace(/[^A-Za-z0-9_-]/g, '');
  const [tab, setTab] = useState<TabId>(initialTab);
  const [flash, setFlash] = useState<Flash | null>(null);
  const [logFilters, setLogFilters] = useState<LogFilters>(emptyFilters);
  const [auditFilters, setAuditFilters] = useState<AuditLogFilters>(emptyAuditFilters);
  const [selectedDelivery, setSelectedDelivery] = useState<string | null>(null);
  const tabRefs = useRef<Partial<Record<TabId, HTMLButtonElement | null>>>({});

  const navigate = useCallback((next: TabId, options?: { deliveryId?: string }) => {
    setTab(next);
    setFlash(null);
    if (next === 'deliveries') setSelectedDelivery(options?.deliveryId ?? null);
  }, []);

  const context = useMemo<EmbedContextValue>(
    () => ({
      api,
      locale,
      idPrefix,
      flash: setFlash,
      navigate,
      // In the document, or in the shadow root of <pushrail-embed>.
      byId: (id: string) => {
        const root = rootRef.current?.getRootNode();
        return root instanceof Document || root instanceof ShadowRoot ? root.getElementById(id) : null;
      },
    }),
    [api, locale, idPrefix, navigate, rootRef],
  );

  useEffect(() => {
    if (flash?.tone !== 'success') return;
    const timer = setTimeout(() => {
      setFlash(null);
    }, 8_000);
    return () => {
      clearTimeout(timer);
    };
  }, [flash]);

  const select = (next: TabId, focus: boolean) => {
    if (next !== tab) navigate(next);
    if (focus) tabRefs.current[next]?.focus();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLButtonElement>) => {
    const index = TABS.findIndex((t) => t.id === tab);
    let next: number | null = null;
    if (event.key === 'ArrowRight') next = (index + 1) % TABS.length;
    else if (event.key === 'ArrowLeft') next = (index - 1 + TABS.length) % TABS.length;
    else if (event.key === 'Home') next = 0;
    else if (event.key === 'End') next = TABS.length - 1;
    if (next === null) return;
    event.preventDefault();
    const target = TABS[next];
    if (target) select(target.id, true);
  };

  const classNames = useClassNames();

  return (
    <EmbedContext.Provider value={context}>
      <div role="tablist" aria-label="Event delivery" className={cx('pr-tabs', classNames.tabList)}>
        {TABS.map((t) => {
          const selected = t.id === tab;
          return (
            <button
              key={t.id}
              ref={(element) => {
                tabRefs.current[t.id] = element;
              }}
              type="button"
              role="tab"
              id={`${idPrefix}-tab-${t.id}`}
              aria-selected={selected}
              aria-controls={`${idPrefix}-panel-${t.id}`}
              tabIndex={selected ? 0 : -1}
              className={cx('pr-tab', classNames.tab)}
              onClick={() => {
                if (t.id === 'deliveries' && tab === 'deliveries') setSelectedDelivery(null);
                select(t.id, false);
              }}
              onKeyDown={onKeyDown}
            >
              {t.label}
            </button>
          );
        })}
      </div>
      <div
        role="tabpanel"
        id={`${idPrefix}-panel-${tab}`}
        aria-labelledby={`${idPrefix}-tab-${tab}`}
        className={cx('pr-panel', classNames.panel)}
      >
        <div aria-live="polite" className="pr-flash">
          {flash ? (
            <Notice
              tone={flash.tone}
              onDismiss={() => {
                setFlash(null);
              }}
            >
              {flash.message}
            </Notice>
          ) : null}
        </div>
        {tab === 'destinations' ? (
          <DestinationsPanel />
        ) : tab === 'credentials' ? (
          <CredentialsPanel />
        ) : tab === 'deliveries' ? (
          <DeliveriesPanel
            filters={logFilters}
            setFilters={setLogFilters}
            selected={selectedDelivery}
            setSelected={setSelectedDelivery}
          />
        ) : tab === 'replay' ? (
          <ReplayPanel />
        ) : (
          <AuditPanel filters={auditFilters} setFilters={setAuditFilters} />
        )}
      </div>
    </EmbedContext.Provider>
  );
}

