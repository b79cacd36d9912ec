/** Replay a window of failed (or succeeded) deliveries, after a confirmation. */

import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type SyntheticEvent } from 'react';

import type { ReplayRequest, ReplayResult } from '../api.js';
import { keys, useDestinations, useEmbed } from '../context.js';
import { formatDateTime, fromLocalInput, plural, toLocalInput } from '../format.js';
import { Button, Card, ConfirmDialog, describedBy, Field, Notice, PanelHeader, useInputClass } from '../ui.js';
import { errorMessage } from './shared.js';

const PREVIEW_LIMIT = 500;

function defaultWindow(): { since: string; until: string } {
  const now = new Date();
  const until = new Date(now.getTime() + 60_000);
  const since = new Date(now.getTime() - 24 * 3600_000);
  return { since: toLocalInput(since), until: toLocalInput(until) };
}

export function ReplayPanel() {
  const { api, idPrefix, locale, navigate } = useEmbed();
  const queryClient = useQueryClient();
  const destinations = useDestinations();
  const inputClass = useInputClass();
  const [initial] = useState(defaultWindow);
  const [since, setSince] = useState(initial.since);
  const [until, setUntil] = useState(initial.until);
  const [destinationId, setDestinationId] = useState('');
  const [status, setStatus] = useState<'failed' | 'succeeded'>('failed');
  const [errors, setErrors] = useState<{ since?: string; until?: string }>({});
  const [confirming, setConfirming] = useState<(ReplayRequest & { since: string; until: string }) | null>(null);
  const [result, setResult] = useState<ReplayResult | null>(null);
  const id = (field: string) => `${idPrefix}-replay-${field}`;

  const sinceIso = fromLocalInput(since);
  const untilIso = fromLocalInput(until);
  const windowValid = !!sinceIso && !!untilIso && sinceIso < untilIso;
  const preview = useQuery({
    queryKey: [...keys.deliveries, 'replay-preview', sinceIso, untilIso, destinationId, status],
    queryFn: () =>
      api.listDeliveries({ status, since: sinceIso, until: untilIso, destination_id: destinationId }, null, PREVIEW_LIMIT),
    enabled: windowValid,
  });
  const matching = preview.data
    ? `${plural(preview.data.items.length, `${status} delivery`, `${status} deliveries`)}${preview.data.next_cursor ? ' or more' : ''}`
    : null;

  const replay = useMutation({
    mutationFn: (request: ReplayRequest) => api.replay(request),
    onSuccess: (answer) => {
      setConfirming(null);
      setResult(answer);
      void queryClient.invalidateQueries({ queryKey: keys.deliveries });
    },
  });

  const submit = (event: SyntheticEvent<HTMLFormElement>) => {
    event.preventDefault();
    const next: typeof errors = {};
    if (!sinceIso) next.since = 'Choose the start of the window.';
    if (!untilIso) next.until = 'Choose the end of the window.';
    else if (sinceIso && sinceIso >= untilIso) next.until = 'Must be after the start.';
    setErrors(next);
    if (!sinceIso || !untilIso || Object.keys(next).length) return;
    setResult(null);
    replay.reset();
    setConfirming({
      since: sinceIso,
      until: untilIso,
      status,
      ...(destinationId ? { destination_id: destinationId } : {}),
    });
  };

  const destinationName = destinations.data?.find((d) => d.id === destinationId)?.name;

  return (
    <>
      <PanelHeader
        title="Replay deliveries"
        description="Send the deliveries of a time window again, for example after fixing your endpoint. Each one restarts its retry schedule."
      />
      {result ? (
        <Notice
          tone="success"
          title={`${plural(result.deliveries, 'delivery', 'deliveries')} replayed`}
          onDismiss={() => {
            setResult(null);
          }}
        >
          <p>
            {result.deliveries === 0
              ? 'Nothing matched the window.'
              : 'They are queued and being sent now. '}
            {result.deliveries > 0 ? (
              <button
                type="button"
                className="pr-link"
                onClick={() => {
                  navigate('deliveries');
                }}
              >
                Open the delivery log
              </button>
            ) : null}
          </p>
        </Notice>
      ) : null}
      <form className="pr-form" noValidate onSubmit={submit} aria-label="Replay a window of deliveries">
        <Card>
          <div className="pr-grid-2">
            <Field id={id('since')} label="From" required error={errors.since}>
              <input
                id={id('since')}
                type="datetime-local"
                className={inputClass}
                value={since}
                aria-invalid={errors.since ? true : undefined}
                aria-describedby={describedBy(id('since'), false, errors.since)}
                onChange={(event) => {
                  setSince(event.target.value);
                }}
              />
            </Field>
            <Field id={id('until')} label="To" required error={errors.until}>
              <input
                id={id('until')}
                type="datetime-local"
                className={inputClass}
                value={until}
                aria-invalid={errors.until ? true : undefined}
                aria-describedby={describedBy(id('until'), false, errors.until)}
                onChange={(event) => {
                  setUntil(event.target.value);
                }}
              />
            </Field>
          </div>
          <p className="pr-hint">Times are in your time zone ({Intl.DateTimeFormat().resolvedOptions().timeZone}).</p>
          <div className="pr-grid-2">
            <Field id={id('destination')} label="Destination" optionalTag={false}>
              <select
                id={id('destination')}
                className={`${inputClass} pr-select`}
                value={destinationId}
                onChange={(event) => {
                  setDestinationId(event.target.value);
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
            <Field id={id('status')} label="Deliveries to replay" required>
              <select
                id={id('status')}
                className={`${inputClass} pr-select`}
                value={status}
                onChange={(event) => {
                  setStatus(event.target.value === 'succeeded' ? 'succeeded' : 'failed');
                }}
              >
                <option value="failed">Failed deliveries</option>
                <option value="succeeded">Succeeded deliveries (send again)</option>
              </select>
            </Field>
          </div>
          <p className="pr-preview" aria-live="polite">
            {!windowValid
              ? ' '
              : preview.isPending
                ? 'Counting matching deliveries…'
                : matching
                  ? `${matching} in this window.`
                  : ''}
          </p>
        </Card>
        <div className="pr-form-footer">
          <Button type="submit" variant="primary" icon="play">
            Replay deliveries…
          </Button>
        </div>
      </form>
      <ConfirmDialog
        open={confirming !== null}
        title={`Replay ${status} deliveries?`}
        confirmLabel="Replay"
        busy={replay.isPending}
        error={replay.isError ? errorMessage(replay.error) : null}
        onCancel={() => {
          setConfirming(null);
        }}
        onConfirm={() => {
          if (confirming) replay.mutate(confirming);
        }}
      >
        {confirming ? (
          <p className="pr-dialog-text">
            Every {status} delivery {destinationName ? <>to <strong>{destinationName}</strong> </> : null}created
            between <strong>{formatDateTime(confirming.since, locale)}</strong> and{' '}
            <strong>{formatDateTime(confirming.until, locale)}</strong>
            {matching ? <> ({matching})</> : null} is queued and sent again now.
          </p>
        ) : null}
      </ConfirmDialog>
    </>
  );
}
