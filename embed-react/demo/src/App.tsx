/**
 * "Acme Commerce", a pretend SaaS dashboard that embeds Pushrail for its customers. The demo
 * backend (../server.mjs) holds the tenant API key and mints session tokens for whoever is
 * signed in; the operator tools at the bottom stand in for Acme's own admin backend.
 */

import { darkTheme, PushrailEmbed, type PushrailTheme } from '@pushrail/embed-react';
import { useCallback, useEffect, useState, type SyntheticEvent } from 'react';

interface Me {
  customer: string | null;
  customers: string[];
  pushrailUrl: string;
}

async function api<T>(path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const data = (await response.json().catch(() => ({}))) as T & { error?: { message?: string } };
  if (!response.ok) throw new Error(data.error?.message ?? `HTTP ${String(response.status)}`);
  return data;
}

/** What the vendor gives the embed: its own backend's token endpoint. A refusal signs the embed out. */
async function fetchToken(): Promise<string> {
  const { token } = await api<{ token: string }>('/api/token');
  return token;
}

const theme: PushrailTheme = {
  colors: { primary: '#635bff', text: '#1a1f36', muted: '#5e6a86', border: '#e3e8ee', surface: '#f6f8fa' },
  radius: 6,
  density: 'comfortable',
};

/** When Acme's dashboard is dark, the embed gets the dark preset (Acme's own shape tokens kept). */
const themeDark: PushrailTheme = { ...darkTheme, radius: 6, density: 'comfortable' };

/** Acme's light/dark switch: `?theme=dark` starts dark; the top bar's "Dark mode" button toggles it. */
function useDarkMode(): [boolean, (dark: boolean) => void] {
  const [dark, setDark] = useState(() => new URLSearchParams(window.location.search).get('theme') === 'dark');
  useEffect(() => {
    document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  }, [dark]);
  return [dark, setDark];
}

export function App() {
  const [dark, setDark] = useDarkMode();
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => {
    api<Me>('/api/me').then(setMe, (e: unknown) => {
      setError(e instanceof Error ? e.message : String(e));
    });
  }, []);
  useEffect(load, [load]);

  if (error) return <p className="demo-error">Demo backend unreachable: {error}</p>;
  if (!me) return null;
  if (!me.customer) return <SignIn me={me} onSignedIn={load} />;
  return <Dashboard me={me} customer={me.customer} onSignedOut={load} dark={dark} setDark={setDark} />;
}

function SignIn({ me, onSignedIn }: { me: Me; onSignedIn: () => void }) {
  const [customer, setCustomer] = useState(me.customers[0] ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = (event: SyntheticEvent<HTMLFormElement>) => {
    event.preventDefault();
    setBusy(true);
    api('/api/sign-in', { external_id: customer.trim() }).then(onSignedIn, (e: unknown) => {
      setBusy(false);
      setError(e instanceof Error ? e.message : String(e));
    });
  };
  return (
    <main className="demo-signin">
      <form className="demo-signin-card" onSubmit={submit}>
        <Logo />
        <h1>Sign in to Acme Commerce</h1>
        <p className="demo-muted">
          A demo: pick which of Acme's customers you are. Each customer sees only their own webhooks.
        </p>
        <label htmlFor="customer">Customer (external id)</label>
        <input
          id="customer"
          list="customers"
          value={customer}
          autoComplete="off"
          onChange={(event) => {
            setCustomer(event.target.value);
          }}
        />
        <datalist id="customers">
          {me.customers.map((c) => (
            <option key={c} value={c} />
          ))}
        </datalist>
        <div className="demo-chips">
          {me.customers.map((c) => (
            <button
              type="button"
              key={c}
              className={c === customer ? 'demo-chip demo-chip-on' : 'demo-chip'}
              onClick={() => {
                setCustomer(c);
              }}
            >
              {c}
            </button>
          ))}
        </div>
        {error ? <p className="demo-error">{error}</p> : null}
        <button type="submit" className="demo-primary" disabled={busy || !customer.trim()}>
          Sign in
        </button>
      </form>
    </main>
  );
}

function Logo() {
  return (
    <span className="demo-logo">
      <span className="demo-logo-mark" aria-hidden="true">
        A
      </span>
      Acme Commerce
    </span>
  );
}

function Dashboard({
  me,
  customer,
  onSignedOut,
  dark,
  setDark,
}: {
  me: Me;
  customer: string;
  onSignedOut: () => void;
  dark: boolean;
  setDark: (dark: boolean) => void;
}) {
  return (
    <div className="demo-shell">
      <header className="demo-topbar">
        <Logo />
        <div className="demo-topbar-right">
          <button
            type="button"
            className="demo-link"
            aria-pressed={dark}
            onClick={() => {
              setDark(!dark);
            }}
          >
            Dark mode
          </button>
          <span className="demo-account" data-testid="signed-in-as">
            Signed in as <strong>{customer}</strong>
          </span>
          <button
            type="button"
            className="demo-link"
            onClick={() => {
              void api('/api/sign-out', {}).then(onSignedOut);
            }}
          >
            Switch customer
          </button>
        </div>
      </header>
      <div className="demo-body">
        <nav className="demo-nav" aria-label="Acme">
          <a href="#overview">Overview</a>
          <a href="#orders">Orders</a>
          <a href="#products">Products</a>
          <a href="#customers">Customers</a>
          <span className="demo-nav-heading">Settings</span>
          <a href="#team">Team</a>
          <a href="#billing">Billing</a>
          <a href="#webhooks" aria-current="page">
            Webhooks
          </a>
        </nav>
        <main className="demo-main">
          <div className="demo-page-header">
            <h1>Webhooks</h1>
            <p className="demo-muted">Get Acme events (orders, refunds, shipments) delivered to your own systems.</p>
          </div>
          <div className="demo-embed">
            <PushrailEmbed key={customer} baseUrl={me.pushrailUrl} fetchToken={fetchToken} theme={dark ? themeDark : theme} />
          </div>
          <OperatorTools me={me} customer={customer} />
        </main>
      </div>
    </div>
  );
}

/** Acme's admin side, shown here so a newcomer can drive the whole flow from one page. */
function OperatorTools({ me, customer }: { me: Me; customer: string }) {
  const [target, setTarget] = useState(customer);
  const [type, setType] = useState('order.created');
  const [log, setLog] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const run = (label: string, path: string, body: unknown, describe: (answer: Record<string, unknown>) => string) => {
    setBusy(true);
    api<Record<string, unknown>>(path, body)
      .then(
        (answer) => {
          setLog((l) => [`${label}: ${describe(answer)}`, ...l].slice(0, 6));
        },
        (e: unknown) => {
          setLog((l) => [`${label} failed: ${e instanceof Error ? e.message : String(e)}`, ...l].slice(0, 6));
        },
      )
      .finally(() => {
        setBusy(false);
      });
  };
  return (
    <section className="demo-operator" aria-labelledby="operator-title">
      <div className="demo-operator-header">
        <h2 id="operator-title">Operator tools</h2>
        <span className="demo-tag">Demo only · normally in Acme's admin backend</span>
      </div>
      <div className="demo-operator-row">
        <label htmlFor="operator-customer">
          Customer
          <select
            id="operator-customer"
            value={target}
            onChange={(event) => {
              setTarget(event.target.value);
            }}
          >
            {[...new Set([customer, ...me.customers])].map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label htmlFor="operator-event-type">
          Event type
          <input
            id="operator-event-type"
            value={type}
            onChange={(event) => {
              setType(event.target.value);
            }}
          />
        </label>
        <button
          type="button"
          className="demo-primary"
          disabled={busy}
          onClick={() => {
            run('Publish', '/api/operator/events', { external_id: target, type }, (a) => {
              const n = Number(a.deliveries);
              return `${String(a.event_id)} → ${String(n)} ${n === 1 ? 'delivery' : 'deliveries'}`;
            });
          }}
        >
          Publish sample event
        </button>
        <button
          type="button"
          className="demo-danger"
          disabled={busy}
          onClick={() => {
            run('Revoke', '/api/operator/revoke', { external_id: target }, (a) => {
              const n = Number(a.revoked);
              return `${String(n)} ${n === 1 ? 'session' : 'sessions'} of ${target} revoked`;
            });
          }}
        >
          Revoke sessions
        </button>
      </div>
      <ul className="demo-log" aria-live="polite" data-testid="operator-log">
        {log.map((line, i) => (
          <li key={String(log.length - i)}>{line}</li>
        ))}
      </ul>
    </section>
  );
}
