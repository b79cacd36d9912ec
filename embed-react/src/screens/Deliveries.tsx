/** The delivery log: filters, cursor pagination, and a delivery's attempts with a replay button. */

import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useId, useRef, useState } from 'react';

import type { Delivery, DeliveryFilters, DeliveryStatus } from '../api.js';
import { keys, useDestinations, useEmbed } from '../context.js';
import { useDeliveries, useDelivery } from '../hooks.js';
import { formatDateTime, fromLocalInput, plural } from '../format.js';
import {
  Button,
  ConfirmDialog,
  CopyButton,
  EmptyState,
  Field,
  Loading,
  Notice,
  PanelHeader,
  StatusBadge,
  Table,
  useInputClass,
} from '../ui.js';
import { AttemptsTable, errorMessage, QueryError } from './shared.js';

/** A delivery waiting on its destination's open circuit: not failed, not attempted. */
export const WAITING_NOTE = 'Waiting: the destination is failing, so this is sent once a test delivery gets through.';

/** The filter form's values: datetime-local strings, as typed. */
export interface LogFilters {
  status: DeliveryStatus | '';
  destination_id: string;
  event_type: string;
  since: string;
  until: string;
}

export const emptyFilters: LogFilters = { status: '', destination_id: '', event_type: '', since: '', until: '' };

const PAGE_SIZE = 25;
const STATUSES: DeliveryStatus[] = ['succeeded', 'failed', 'pending', 'delivering'];

function useDebounced<T>(value: T, ms: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => {
      setDebounced(value);
    }, ms);
    return () => {
      clearTimeout(timer);
    };
  }, [value, ms]);
  return debounced;
}

export function DeliveriesPanel({
  filters,
  setFilters,
  selected,
  setSelected,
}: {
  filters: LogFilters;
  setFilters: (filters: LogFilters) => void;
  selected: string | null;
  setSelected: (id: string | null) => void;
}) {
  if (selected) {
    return (
      <DeliveryDetail
        id={selected}
        onBack={() => {
          setSelected(null);
        }}
      />
    );
  }
  return <DeliveryLog filters={filters} setFilters={setFilters} onOpen={setSelected} />;
}

function DeliveryLog({
  filters,
  setFilters,
  onOpen,
}: {
  filters: LogFilters;
  setFilters: (filters: LogFilters) => void;
  onOpen: (id: string) => void;
}) {
  const { locale, idPrefix } = useEmbed();
  const destinations = useDestinations();
  const inputClass = useInputClass();
  const eventType = useDebounced(filters.event_type.trim(), 300);
  const query: DeliveryFilters = {
    status: filters.status,
    destination_id: filters.destination_id,
    event_type: eventType,
    since: fromLocalInput(filters.since),
    until: fromLocalInput(filters.until),
  };
  const log = useDeliveries(query, { pageSize: PAGE_SIZE, refetchInterval: 5_000 });
  const rows = log.data?.pages.flatMap((page) => page.items) ?? [];
  const nameOf = (id: string) => destinations.data?.find((d) => d.id === id)?.name ?? id;
  const filtered = Object.values(filters).some(Boolean);
  const id = (field: string) => `${idPrefix}-log-${field}`;
  const set = (patch: Partial<LogFilters>) => {
    setFilters({ ...filters, ...patch });
  };

  return (
    <>
      <PanelHeader
        title="Delivery log"
        description="Every event sent to your destinations, with each attempt. Newest first."
        actions={
          <>
            {filtered ? (
              <Button
                variant="ghost"
                onClick={() => {
                  setFilters(emptyFilters);
                }}
              >
                Clear filters
              </Button>
            ) : null}
            <Button icon="refresh" busy={log.isRefetching && !log.isFetchingNextPage} onClick={() => void log.refetch()}>
              Refresh
            </Button>
          </>
        }
      />
      <form
        className="pr-filters"
        aria-label="Filter deliveries"
        onSubmit={(event) => {
          event.preventDefault();
        }}
      >
        <Field id={id('status')} label="Status" optionalTag={false}>
          <select
            id={id('status')}
            className={`${inputClass} pr-select`}
            value={filters.status}
            onChange={(event) => {
              set({ status: event.target.value as DeliveryStatus | '' });
            }}
          >
            <option value="">All statuses</option>
            {STATUSES.map((status) => (
              <option key={status} value={status}>
                {status.charAt(0).toUpperCase() + status.slice(1)}
              </option>
            ))}
          </select>
        </Field>
        <Field id={id('destination')} label="Destination" optionalTag={false}>
          <select
            id={id('destination')}
            className={`${inputClass} pr-select`}
            value={filters.destination_id}
            onChange={(event) => {
              set({ destination_id: event.target.value });
            }}
          >
            <option value="">All destinations</option>
            {(destinations.data ?? []).map((d) => (
              <option key={d.id} value={d.id}>
                {d.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id={id('event')} label="Event type" optionalTag={false}>
          <input
            id={id('event')}
            className={`${inputClass} pr-mono`}
            value={filters.event_type}
            placeholder="order.created"
            spellCheck={false}
            autoComplete="off"
            onChange={(event) => {
              set({ event_type: event.target.value });
            }}
          />
        </Field>
        <Field id={id('since')} label="Since" optionalTag={false}>
          <input
            id={id('since')}
            type="datetime-local"
            className={inputClass}
            value={filters.since}
            onChange={(event) => {
              set({ since: event.target.value });
            }}
          />
        </Field>
        <Field id={id('until')} label="Until" optionalTag={false}>
          <input
            id={id('until')}
            type="datetime-local"
            className={inputClass}
            value={filters.until}
            onChange={(event) => {
              set({ until: event.target.value });
            }}
          />
        </Field>
      </form>

      {log.isPending ? (
        <Loading />
      ) : log.isError && rows.length === 0 ? (
        <QueryError error={log.error} onRetry={() => void log.refetch()} />
      ) : rows.length === 0 ? (
        <EmptyState icon="clock" title={filtered ? 'No deliveries match these filters' : 'No deliveries yet'}>
          <p>
            {filtered
              ? 'Try a wider time range or clear the filters.'
              : 'Deliveries appear here as soon as events are sent to your destinations.'}
          </p>
        </EmptyState>
      ) : (
        <>
          <Table label="Deliveries">
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Event</th>
                <th scope="col">Destination</th>
                <th scope="col" className="pr-num">
                  Attempts
                </th>
                <th scope="col">Created</th>
                <th scope="col">Next attempt</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((delivery) => (
                <tr key={delivery.id} data-delivery={delivery.id} data-status={delivery.status}>
                  <td>
                    <StatusBadge status={delivery.status} />
                    {delivery.waiting_on === 'open_circuit' ? (
                      <p className="pr-disabled-reason" data-waiting-on="open_circuit">
                        {WAITING_NOTE}
                      </p>
                    ) : null}
                  </td>
                  <td>
                    <button
                      type="button"
                      className="pr-link pr-mono"
                      onClick={() => {
                        onOpen(delivery.id);
                      }}
                      aria-label={`${delivery.event_type}, ${delivery.status}: view attempts`}
                    >
                      {delivery.event_type}
                    </button>
                    <div className="pr-cell-sub pr-mono">{delivery.event_id}</div>
                  </td>
                  <td>{nameOf(delivery.destination_id)}</td>
                  <td className="pr-num">{delivery.attempt_count}</td>
                  <td className="pr-nowrap pr-muted">{formatDateTime(delivery.created_at, locale)}</td>
                  <td className="pr-nowrap pr-muted">
                    {delivery.next_attempt_at ? formatDateTime(delivery.next_attempt_at, locale) : '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </Table>
          <div className="pr-pagination">
            <span className="pr-muted">
              {plural(rows.length, 'delivery', 'deliveries')} shown
            </span>
            {log.hasNextPage ? (
              <Button busy={log.isFetchingNextPage} onClick={() => void log.fetchNextPage()}>
                Load more
              </Button>
            ) : null}
          </div>
        </>
      )}
    </>
  );
}

function DeliveryDetail({ id, onBack }: { id: string; onBack: () => void }) {
  const { api, locale, flash } = useEmbed();
  const queryClient = useQueryClient();
  const destinations = useDestinations();
  const [confirming, setConfirming] = useState(false);
  const delivery = useDelivery(id);
  const replay = useMutation({
    mutationFn: () => api.replay({ delivery_id: id }),
    onSuccess: (result) => {
      setConfirming(false);
      flash({ tone: 'success', message: `${plural(result.deliveries, 'delivery', 'deliveries')} replayed.` });
      void queryClient.invalidateQueries({ queryKey: keys.delivery(id) });
      void queryClient.invalidateQueries({ queryKey: keys.deliveries });
    },
  });
  const back = { label: 'Delivery log', onClick: onBack };

  if (delivery.isPending) {
    return (
      <>
        <PanelHeader title="Delivery" back={back} />
        <Loading />
      </>
    );
  }
  if (delivery.isError) {
    return (
      <>
        <PanelHeader title="Delivery" back={back} />
        <QueryError error={delivery.error} onRetry={() => void delivery.refetch()} />
      </>
    );
  }
  const d: Delivery = delivery.data;
  const destination = destinations.data?.find((x) => x.id === d.destination_id);
  const inFlight = d.status === 'pending' || d.status === 'delivering';
  const attempts = [...(d.attempts ?? [])].sort((a, b) => b.n - a.n);

  return (
    <>
      <PanelHeader
        back={back}
        title={
          <span className="pr-title-with-badge">
            <span className="pr-mono">{d.event_type}</span>
            <StatusBadge status={d.status} />
          </span>
        }
        description={d.waiting_on === 'open_circuit' ? WAITING_NOTE : undefined}
        actions={
          <Button
            variant="primary"
            icon="play"
            disabled={inFlight}
            title={inFlight ? 'A delivery can be replayed once it has succeeded or failed.' : undefined}
            onClick={() => {
              replay.reset();
              setConfirming(true);
            }}
          >
            Replay
          </Button>
        }
      />
      <dl className="pr-dl pr-dl-grid">
        <div>
          <dt>Destination</dt>
          <dd>{destination?.name ?? d.destination_id}</dd>
        </div>
        <div>
          <dt>Attempts</dt>
          <dd>{d.attempt_count}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{formatDateTime(d.created_at, locale)}</dd>
        </div>
        <div>
          <dt>Next attempt</dt>
          <dd>{d.next_attempt_at ? formatDateTime(d.next_attempt_at, locale) : '—'}</dd>
        </div>
        <div>
          <dt>Delivery ID</dt>
          <dd className="pr-mono">{d.id}</dd>
        </div>
        <div>
          <dt>Event ID</dt>
          <dd className="pr-mono">{d.event_id}</dd>
        </div>
      </dl>
      {d.payload !== undefined ? <Payload payload={d.payload} /> : null}
      <h3 className="pr-section-title">Attempts</h3>
      {attempts.length ? (
        <AttemptsTable attempts={attempts} locale={locale} />
      ) : (
        <Notice tone="info">No attempt yet: the first one is on its way.</Notice>
      )}
      <ConfirmDialog
        open={confirming}
        title="Replay this delivery?"
        confirmLabel="Replay delivery"
        busy={replay.isPending}
        error={replay.isError ? errorMessage(replay.error) : null}
        onCancel={() => {
          setConfirming(false);
        }}
        onConfirm={() => {
          replay.mutate();
        }}
      >
        <p className="pr-dialog-text">
          The <code className="pr-chip">{d.event_type}</code> event is sent to{' '}
          <strong>{destination?.name ?? 'its destination'}</strong> again now, with the same event ID so your
          endpoint can recognise it. Attempt numbers continue from {d.attempt_count}.
        </p>
      </ConfirmDialog>
    </>
  );
}

/** Payloads longer than this many lines are folded (to their first 24: `.pr-code-folded`). */
const FOLD_OVER = 40;

/** What was sent: the event's payload, pretty-printed, with Copy; long ones folded behind "Show all". */
export function Payload({ payload }: { payload: unknown }) {
  const ref = useRef<HTMLPreElement>(null);
  const titleId = useId();
  const codeId = useId();
  const [expanded, setExpanded] = useState(false);
  const text = JSON.stringify(payload, null, 2);
  const lines = text.split('\n').length;
  const folded = lines > FOLD_OVER && !expanded;
  return (
    <div className="pr-payload">
      <div className="pr-section-header">
        <h3 className="pr-section-title" id={titleId}>
          Payload
        </h3>
        <CopyButton text={text} what="payload" source={ref} />
      </div>
      {/* Folding only clips: the whole payload stays in the element, for screen readers and for selecting it. */}
      <pre
        ref={ref}
        id={codeId}
        className={`pr-code pr-payload-code${folded ? ' pr-code-folded' : lines > FOLD_OVER ? ' pr-code-expanded' : ''}`}
        tabIndex={0}
        role="region"
        aria-labelledby={titleId}
      >
        {text}
      </pre>
      {lines > FOLD_OVER ? (
        <div className="pr-fold">
          <Button
            size="sm"
            variant="ghost"
            aria-expanded={expanded}
            aria-controls={codeId}
            onClick={() => {
              setExpanded(!expanded);
            }}
          >
            {expanded ? 'Show less' : `Show all ${String(lines)} lines`}
          </Button>
        </div>
      ) : null}
    </div>
  );
}
