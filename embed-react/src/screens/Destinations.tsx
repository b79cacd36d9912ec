/** Destinations: list, create and edit (forms from each type's config_schema), test, toggle, delete. */

import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type SyntheticEvent } from 'react';

import { PushrailApiError, type Destination, type DestinationInput, type DestinationType, type TestResult } from '../api.js';
import { keys, useCredentials, useDestinations, useEmbed, useTypes } from '../context.js';
import { formatDateTime, kindLabel, summarize } from '../format.js';
import { clearChanged, mapDetails, prune, validate, type FieldErrors } from '../schema.js';
import { SchemaForm } from '../SchemaForm.js';
import {
  Button,
  Card,
  ConfirmDialog,
  describedBy,
  Dialog,
  EmptyState,
  Field,
  Loading,
  Notice,
  PanelHeader,
  StatusBadge,
  Table,
  useInputClass,
} from '../ui.js';
import { AttemptSummary, errorMessage, QueryError } from './shared.js';

/** What an open circuit means, in the customer's words. */
export const CIRCUIT_OPEN_NOTE =
  'Failing: deliveries are waiting while Pushrail tries one at a time; they resume once one gets through.';

type View = { mode: 'list' } | { mode: 'create' } | { mode: 'edit'; id: string };

export function DestinationsPanel() {
  const [view, setView] = useState<View>({ mode: 'list' });
  // Back on the list, focus returns to the button that opened the form (none on first show).
  const [returnFocus, setReturnFocus] = useState<string | null>(null);
  if (view.mode === 'list') {
    return (
      <DestinationList
        returnFocus={returnFocus}
        onCreate={() => {
          setView({ mode: 'create' });
        }}
        onEdit={(id) => {
          setView({ mode: 'edit', id });
        }}
      />
    );
  }
  return (
    <DestinationForm
      key={view.mode === 'edit' ? view.id : 'new'}
      editId={view.mode === 'edit' ? view.id : null}
      onDone={() => {
        setReturnFocus(view.mode === 'edit' ? `edit-${view.id}` : 'add');
        setView({ mode: 'list' });
      }}
    />
  );
}

function DestinationList({
  returnFocus,
  onCreate,
  onEdit,
}: {
  returnFocus: string | null;
  onCreate: () => void;
  onEdit: (id: string) => void;
}) {
  const { api, locale, flash, navigate, idPrefix, byId } = useEmbed();
  const focusId = (what: string) => `${idPrefix}-dst-${what}`;
  useEffect(() => {
    if (returnFocus) byId(`${idPrefix}-dst-${returnFocus}`)?.focus();
  }, [returnFocus, idPrefix, byId]);
  const queryClient = useQueryClient();
  const destinations = useDestinations();
  const types = useTypes();
  const [testing, setTesting] = useState<{ destination: Destination; result?: TestResult; error?: string } | null>(null);
  const [deleting, setDeleting] = useState<Destination | null>(null);

  const test = useMutation({
    mutationFn: (destination: Destination) => api.testDestination(destination.id),
    onMutate: (destination) => {
      setTesting({ destination });
    },
    onSuccess: (result, destination) => {
      setTesting({ destination, result });
      void queryClient.invalidateQueries({ queryKey: keys.deliveries });
    },
    onError: (error, destination) => {
      setTesting({ destination, error: errorMessage(error) });
    },
  });

  const toggle = useMutation({
    mutationFn: (destination: Destination) => api.updateDestination(destination.id, { enabled: !destination.enabled }),
    onSuccess: (updated) => {
      flash({ tone: 'success', message: `“${updated.name}” ${updated.enabled ? 'enabled' : 'disabled'}.` });
      void queryClient.invalidateQueries({ queryKey: keys.destinations });
    },
    onError: (error) => {
      flash({ tone: 'danger', message: errorMessage(error) });
    },
  });

  const remove = useMutation({
    mutationFn: (destination: Destination) => api.deleteDestination(destination.id),
    onSuccess: (_, destination) => {
      setDeleting(null);
      flash({ tone: 'success', message: `“${destination.name}” deleted.` });
      void queryClient.invalidateQueries({ queryKey: keys.destinations });
    },
  });

  const typeOf = (id: string) => types.data?.find((t) => t.type === id);

  return (
    <>
      <PanelHeader
        title="Destinations"
        description="Where your events are delivered. Each destination receives the event types it subscribes to."
        actions={
          <Button id={focusId('add')} variant="primary" icon="plus" onClick={onCreate}>
            Add destination
          </Button>
        }
      />
      {destinations.isPending ? (
        <Loading />
      ) : destinations.isError ? (
        <QueryError error={destinations.error} onRetry={() => void destinations.refetch()} />
      ) : destinations.data.length === 0 ? (
        <EmptyState icon="send" title="No destinations yet">
          <p>Add a destination to start receiving events.</p>
          <Button variant="primary" icon="plus" onClick={onCreate}>
            Add destination
          </Button>
        </EmptyState>
      ) : (
        <Table label="Destinations">
          <thead>
            <tr>
              <th scope="col">Destination</th>
              <th scope="col">Events</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span className="pr-visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {destinations.data.map((destination) => {
              const type = typeOf(destination.type);
              const target = summarize(destination, type);
              return (
                <tr key={destination.id} data-destination={destination.name}>
                  <td>
                    <div className="pr-cell-title">{destination.name}</div>
                    <div className="pr-cell-sub">
                      <span>{type?.name ?? destination.type}</span>
                      {target ? <span className="pr-mono pr-truncate" title={target}>{target}</span> : null}
                    </div>
                  </td>
                  <td>
                    {destination.event_types.length === 0 ? (
                      <span className="pr-muted">All events</span>
                    ) : (
                      <span className="pr-chips">
                        {destination.event_types.map((pattern) => (
                          <code key={pattern} className="pr-chip">
                            {pattern}
                          </code>
                        ))}
                      </span>
                    )}
                  </td>
                  <td>
                    <StatusBadge status={destination.enabled ? 'enabled' : 'disabled'} />
                    {!destination.enabled && destination.disabled_reason ? (
                      <p className="pr-disabled-reason" data-disabled-reason>
                        {destination.disabled_reason}
                      </p>
                    ) : null}
                    {destination.enabled && destination.circuit === 'open' ? (
                      <p className="pr-disabled-reason" data-circuit-open>
                        {CIRCUIT_OPEN_NOTE}
                        {destination.next_probe_at ? ` Next try: ${formatDateTime(destination.next_probe_at, locale)}.` : ''}
                      </p>
                    ) : null}
                  </td>
                  <td>
                    <div className="pr-row-actions">
                      <Button
                        size="sm"
                        icon="send"
                        busy={test.isPending && test.variables.id === destination.id}
                        disabled={!destination.enabled}
                        title={destination.enabled ? undefined : 'Enable the destination to send a test event'}
                        onClick={() => {
                          test.mutate(destination);
                        }}
                        aria-label={`Send test event to ${destination.name}`}
                      >
                        Send test
                      </Button>
                      <Button
                        id={focusId(`edit-${destination.id}`)}
                        size="sm"
                        onClick={() => { onEdit(destination.id); }}
                        aria-label={`Edit ${destination.name}`}
                      >
                        Edit
                      </Button>
                      <Button
                        size="sm"
                        busy={toggle.isPending && toggle.variables.id === destination.id}
                        onClick={() => {
                          toggle.mutate(destination);
                        }}
                        aria-label={`${destination.enabled ? 'Disable' : 'Enable'} ${destination.name}`}
                      >
                        {destination.enabled ? 'Disable' : 'Enable'}
                      </Button>
                      <Button
                        size="sm"
                        variant="ghost"
                        className="pr-button-danger-text"
                        icon="trash"
                        onClick={() => {
                          remove.reset();
                          setDeleting(destination);
                        }}
                        aria-label={`Delete ${destination.name}`}
                      />
                    </div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </Table>
      )}

      <Dialog
        open={testing !== null}
        wide
        title={testing?.result ? 'Test event sent' : testing?.error ? 'Test event not sent' : 'Sending test event…'}
        onClose={() => {
          setTesting(null);
        }}
        footer={
          <>
            {testing?.result?.delivery_id ? (
              <Button
                onClick={() => {
                  const id = testing.result?.delivery_id;
                  setTesting(null);
                  if (id) navigate('deliveries', { deliveryId: id });
                }}
              >
                View in delivery log
              </Button>
            ) : null}
            <Button
              variant="primary"
              onClick={() => {
                setTesting(null);
              }}
            >
              Done
            </Button>
          </>
        }
      >
        {testing ? (
          <>
            <p className="pr-dialog-text">
              A <code className="pr-chip">pushrail.test</code> event to <strong>{testing.destination.name}</strong>.
            </p>
            {testing.error ? (
              <Notice tone="danger">{testing.error}</Notice>
            ) : testing.result?.attempt ? (
              <AttemptSummary attempt={testing.result.attempt} locale={locale} />
            ) : testing.result ? (
              <Notice tone="info">The test event was queued.</Notice>
            ) : (
              <Loading label="Sending…" />
            )}
          </>
        ) : null}
      </Dialog>

      <ConfirmDialog
        open={deleting !== null}
        title={`Delete “${deleting?.name ?? ''}”?`}
        confirmLabel="Delete destination"
        tone="danger"
        busy={remove.isPending}
        error={remove.isError ? errorMessage(remove.error) : null}
        onCancel={() => {
          setDeleting(null);
        }}
        onConfirm={() => {
          if (deleting) remove.mutate(deleting);
        }}
      >
        <p className="pr-dialog-text">
          Events stop being delivered to this destination, and deliveries still waiting for it are marked failed.
          This can't be undone.
        </p>
      </ConfirmDialog>
    </>
  );
}

const GENERATE = '__generate__';

/** `whsec_` and 24 random bytes in base64, the Standard Webhooks secret format. */
function newSigningSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

function DestinationForm({ editId, onDone }: { editId: string | null; onDone: () => void }) {
  const types = useTypes();
  const destinations = useDestinations();
  if (types.isPending || (editId && destinations.isPending)) return <Loading />;
  if (types.isError) return <QueryError error={types.error} onRetry={() => void types.refetch()} />;
  const existing = editId ? destinations.data?.find((d) => d.id === editId) : undefined;
  if (editId && !existing) {
    return (
      <>
        <PanelHeader title="Destination not found" back={{ label: 'Destinations', onClick: onDone }} />
        <Notice tone="danger">This destination no longer exists.</Notice>
      </>
    );
  }
  if (types.data.length === 0) {
    return (
      <>
        <PanelHeader title="Add a destination" back={{ label: 'Destinations', onClick: onDone }} />
        <Notice tone="warning">No destination types are available right now.</Notice>
      </>
    );
  }
  return <DestinationEditor types={types.data} existing={existing} onDone={onDone} />;
}

function DestinationEditor({
  types,
  existing,
  onDone,
}: {
  types: DestinationType[];
  existing: Destination | undefined;
  onDone: () => void;
}) {
  const { api, idPrefix, flash } = useEmbed();
  const queryClient = useQueryClient();
  const credentials = useCredentials();
  const inputClass = useInputClass();
  const [typeId, setTypeId] = useState(existing?.type ?? types[0]?.type ?? '');
  const type = types.find((t) => t.type === typeId);
  const [name, setName] = useState(existing?.name ?? '');
  const [config, setConfig] = useState<Record<string, unknown>>(existing?.config ?? {});
  const [eventTypes, setEventTypes] = useState(existing?.event_types.join(', ') ?? '');
  const [enabled, setEnabled] = useState(existing?.enabled ?? true);
  const kinds = type?.credential_kinds?.map((k) => k.kind) ?? [];
  const generates = !existing && kinds.includes('webhook_secret');
  const [credentialId, setCredentialId] = useState<string>(existing?.credential_id ?? (generates ? GENERATE : ''));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [configErrors, setConfigErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<{ message: string; list: string[] } | null>(null);

  const usable = (credentials.data ?? []).filter((c) => kinds.includes(c.kind));
  const id = (field: string) => `${idPrefix}-dst-${field}`;
  const formRef = useRef<HTMLFormElement>(null);
  useEffect(() => {
    // Opening the form moves focus to its first field: the chosen type, or the name when editing.
    formRef.current
      ?.querySelector<HTMLElement>('input:checked:enabled, input:not([type="radio"]):enabled, select:enabled, textarea:enabled')
      ?.focus();
  }, []);

  const save = useMutation({
    mutationFn: async ({ input, generate }: { input: DestinationInput; generate: boolean }) => {
      if (existing) return { saved: await api.updateDestination(existing.id, input), secret: null };
      if (!generate) return { saved: await api.createDestination(input), secret: null };
      // The secret is made here, in the browser, so the customer can see it exactly once: the
      // API never returns secret material.
      const secret = newSigningSecret();
      const credential = await api.createCredential({
        name: `${input.name ?? 'Destination'} signing secret`,
        kind: 'webhook_secret',
        secret: { secret },
      });
      try {
        return { saved: await api.createDestination({ ...input, credential_id: credential.id }), secret };
      } catch (error) {
        // Refused (a field to fix, say): take the unused secret back so retries leave none behind.
        await api.deleteCredential(credential.id).catch(() => undefined);
        throw error;
      }
    },
    onSuccess: ({ saved, secret }) => {
      void queryClient.invalidateQueries({ queryKey: keys.destinations });
      void queryClient.invalidateQueries({ queryKey: keys.credentials });
      if (secret) {
        // An info notice stays until dismissed: this is the only time the secret is shown.
        flash({
          tone: 'info',
          message: `“${saved.name}” created. Its signing secret, shown only now (copy it to verify signatures): ${secret}`,
        });
      } else {
        flash({ tone: 'success', message: existing ? `“${saved.name}” saved.` : `“${saved.name}” created.` });
      }
      onDone();
    },
    onError: (error) => {
      if (error instanceof PushrailApiError && error.details.length > 0) {
        const { byPrefix, unmatched } = mapDetails(error.details, ['config'], ['name', 'event_types', 'credential_id', 'type', 'enabled']);
        setErrors(byPrefix[''] ?? {});
        setConfigErrors(byPrefix.config ?? {});
        setFormError({
          message: unmatched.length ? error.message : 'Some settings need attention. Check the highlighted fields.',
          list: unmatched.map((d) => `${d.field}: ${d.message}`),
        });
      } else {
        setFormError({ message: errorMessage(error), list: [] });
      }
    },
  });

  const submit = (event: SyntheticEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!type) return;
    const patterns = eventTypes
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const cleanConfig = prune(config);
    const topErrors: FieldErrors = {};
    if (!name.trim()) topErrors.name = 'Give the destination a name.';
    if (type.credential_required && (credentialId === '' || credentialId === GENERATE) && !generates) {
      topErrors.credential_id = 'This destination type needs a credential.';
    }
    const clientConfigErrors = validate(type.config_schema, cleanConfig);
    setErrors(topErrors);
    setConfigErrors(clientConfigErrors);
    if (Object.keys(topErrors).length || Object.keys(clientConfigErrors).length) {
      setFormError({ message: 'Some settings need attention. Check the highlighted fields.', list: [] });
      focusFirstInvalid(event.currentTarget);
      return;
    }
    setFormError(null);
    const input: DestinationInput = {
      name: name.trim(),
      config: cleanConfig,
      event_types: patterns,
      enabled,
    };
    if (!existing) input.type = type.type;
    if (credentialId !== GENERATE) {
      if (credentialId) input.credential_id = credentialId;
      else if (existing) input.credential_id = null;
    }
    save.mutate({ input, generate: credentialId === GENERATE });
  };

  const credentialHint = kinds.length
    ? `Accepts ${kinds.map(kindLabel).join(', ')}; add your own in the Credentials tab.${
        generates ? ' A generated signing secret is shown once, right after the destination is created.' : ''
      }`
    : undefined;

  return (
    <>
      <PanelHeader
        title={existing ? `Edit “${existing.name}”` : 'Add a destination'}
        description={existing ? undefined : 'Choose where events go and how they are sent.'}
        back={{ label: 'Destinations', onClick: onDone }}
      />
      <form
        ref={formRef}
        className="pr-form"
        noValidate
        onSubmit={submit}
        onChange={() => {
          setFormError(null);
        }}
        aria-label={existing ? 'Edit destination' : 'New destination'}
      >
        {formError ? (
          <Notice tone="danger" title={formError.message}>
            {formError.list.length ? (
              <ul>
                {formError.list.map((item) => (
                  <li key={item}>{item}</li>
                ))}
              </ul>
            ) : null}
          </Notice>
        ) : null}

        <Card>
          <fieldset className="pr-fieldset pr-type-picker" disabled={!!existing}>
            <legend className="pr-legend">Type</legend>
            <div className="pr-type-grid" role="radiogroup" aria-label="Destination type">
              {types.map((t) => (
                <label key={t.type} className={`pr-type-card${t.type === typeId ? ' pr-type-card-selected' : ''}`}>
                  <input
                    type="radio"
                    name={id('type')}
                    value={t.type}
                    checked={t.type === typeId}
                    onChange={() => {
                      setTypeId(t.type);
                      setConfig({});
                      setConfigErrors({});
                      const nextKinds = t.credential_kinds?.map((k) => k.kind) ?? [];
                      setCredentialId(!existing && nextKinds.includes('webhook_secret') ? GENERATE : '');
                    }}
                  />
                  <span className="pr-type-name">{t.name}</span>
                  <span className="pr-type-description">{t.description}</span>
                </label>
              ))}
            </div>
          </fieldset>
        </Card>

        <Card>
          <h3 className="pr-card-title">Details</h3>
          <Field id={id('name')} label="Name" required hint="Shown in this dashboard only." error={errors.name}>
            <input
              id={id('name')}
              className={inputClass}
              required
              maxLength={255}
              value={name}
              autoComplete="off"
              placeholder="Production endpoint"
              aria-invalid={errors.name ? true : undefined}
              aria-describedby={describedBy(id('name'), true, errors.name)}
              onChange={(event) => {
                setName(event.target.value);
                setErrors(({ name: _name, ...rest }) => rest);
              }}
            />
          </Field>
          {type ? (
            <SchemaForm
              key={type.type}
              schema={type.config_schema}
              value={config}
              onChange={(next) => {
                setConfigErrors(clearChanged(configErrors, config, next));
                setConfig(next);
              }}
              errors={configErrors}
              idPrefix={id(`config-${type.type}`)}
            />
          ) : null}
        </Card>

        <Card>
          <h3 className="pr-card-title">Delivery</h3>
          <Field
            id={id('events')}
            label="Event types"
            hint="Comma-separated patterns such as order.* or invoice.paid. Leave empty to receive every event."
            error={errors.event_types}
          >
            <input
              id={id('events')}
              className={`${inputClass} pr-mono`}
              value={eventTypes}
              autoComplete="off"
              spellCheck={false}
              placeholder="All events"
              aria-invalid={errors.event_types ? true : undefined}
              aria-describedby={describedBy(id('events'), true, errors.event_types)}
              onChange={(event) => {
                setEventTypes(event.target.value);
                setErrors(({ event_types: _eventTypes, ...rest }) => rest);
              }}
            />
          </Field>
          {kinds.length ? (
            <Field
              id={id('credential')}
              label="Credential"
              required={type?.credential_required === true}
              hint={credentialHint}
              error={errors.credential_id}
            >
              <select
                id={id('credential')}
                className={`${inputClass} pr-select`}
                value={credentialId}
                aria-invalid={errors.credential_id ? true : undefined}
                aria-describedby={describedBy(id('credential'), credentialHint, errors.credential_id)}
                onChange={(event) => {
                  setCredentialId(event.target.value);
                  setErrors(({ credential_id: _credentialId, ...rest }) => rest);
                }}
              >
                {generates ? <option value={GENERATE}>Generate a new signing secret</option> : null}
                {!generates && !type?.credential_required ? <option value="">None</option> : null}
                {!generates && type?.credential_required && !credentialId ? <option value="">Choose…</option> : null}
                {usable.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.name} · {kindLabel(c.kind)}
                  </option>
                ))}
              </select>
            </Field>
          ) : null}
          <Field id={id('enabled')} label="Enabled: deliver events to this destination" inline>
            <input
              id={id('enabled')}
              type="checkbox"
              className="pr-checkbox"
              checked={enabled}
              onChange={(event) => {
                setEnabled(event.target.checked);
              }}
            />
          </Field>
        </Card>

        <div className="pr-form-footer">
          <Button onClick={onDone} disabled={save.isPending}>
            Cancel
          </Button>
          <Button type="submit" variant="primary" busy={save.isPending}>
            {existing ? 'Save changes' : 'Create destination'}
          </Button>
        </div>
      </form>
    </>
  );
}

export function focusFirstInvalid(form: HTMLFormElement | null): void {
  if (!form) return;
  // The errors render on the next paint; focus the first invalid control then.
  requestAnimationFrame(() => {
    const invalid = form.querySelector<HTMLElement>('[aria-invalid="true"]');
    invalid?.focus();
  });
}

