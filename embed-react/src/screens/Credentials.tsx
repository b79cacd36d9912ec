/** Credentials: create (a kind from the types' credential_kinds), rotate, delete. Secrets go in, never out. */

import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type SyntheticEvent } from 'react';

import { PushrailApiError, type Credential, type CredentialKind, type JsonSchema } from '../api.js';
import { keys, useAwsRole, useCredentials, useDestinations, useEmbed, useTypes } from '../context.js';
import { allKinds, formatDateTime, kindLabel, kindPhrase } from '../format.js';
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
  Table,
  useInputClass,
} from '../ui.js';
import { AWS_ROLE_KIND, AwsRoleReminder, AwsRoleSetup, rolesUnavailable } from './AwsRole.js';
import { focusFirstInvalid } from './Destinations.js';
import { ConnectionStringField, SAS_KEY_KIND, sasKeyFields } from './ServiceBus.js';
import { errorMessage, QueryError } from './shared.js';

const EMPTY_SCHEMA: JsonSchema = { type: 'object', properties: {} };

export function CredentialsPanel() {
  const [creating, setCreating] = useState(false);
  if (creating) {
    return (
      <CredentialCreate
        onDone={() => {
          setCreating(false);
        }}
      />
    );
  }
  return (
    <CredentialList
      onCreate={() => {
        setCreating(true);
      }}
    />
  );
}

function CredentialList({ onCreate }: { onCreate: () => void }) {
  const { api, locale, flash } = useEmbed();
  const queryClient = useQueryClient();
  const credentials = useCredentials();
  const destinations = useDestinations();
  const types = useTypes();
  const [rotating, setRotating] = useState<Credential | null>(null);
  const [deleting, setDeleting] = useState<Credential | null>(null);

  const remove = useMutation({
    mutationFn: (credential: Credential) => api.deleteCredential(credential.id),
    onSuccess: (_, credential) => {
      setDeleting(null);
      flash({ tone: 'success', message: `“${credential.name}” deleted.` });
      void queryClient.invalidateQueries({ queryKey: keys.credentials });
    },
  });

  const usedBy = (id: string) => (destinations.data ?? []).filter((d) => d.credential_id === id);
  const kinds = allKinds(types.data ?? []);

  return (
    <>
      <PanelHeader
        title="Credentials"
        description="Keys and secrets your destinations use. They are stored encrypted and can't be viewed after saving."
        actions={
          <Button variant="primary" icon="plus" onClick={onCreate}>
            Add credential
          </Button>
        }
      />
      {credentials.isPending ? (
        <Loading />
      ) : credentials.isError ? (
        <QueryError error={credentials.error} onRetry={() => void credentials.refetch()} />
      ) : credentials.data.length === 0 ? (
        <EmptyState icon="key" title="No credentials yet">
          <p>Add API keys, signing secrets or access keys for your destinations to use.</p>
          <Button variant="primary" icon="plus" onClick={onCreate}>
            Add credential
          </Button>
        </EmptyState>
      ) : (
        <Table label="Credentials">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Fingerprint</th>
              <th scope="col">Used by</th>
              <th scope="col">Last changed</th>
              <th scope="col">
                <span className="pr-visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {credentials.data.map((credential) => {
              const users = usedBy(credential.id);
              return (
                <tr key={credential.id} data-credential={credential.name}>
                  <td>
                    <div className="pr-cell-title">{credential.name}</div>
                  </td>
                  <td className="pr-nowrap">{kindLabel(credential.kind)}</td>
                  <td>
                    <code className="pr-mono pr-muted">{credential.fingerprint}</code>
                  </td>
                  <td>
                    {users.length ? users.map((d) => d.name).join(', ') : <span className="pr-muted">Not in use</span>}
                  </td>
                  <td className="pr-nowrap pr-muted">
                    {credential.rotated_at
                      ? `Rotated ${formatDateTime(credential.rotated_at, locale)}`
                      : `Created ${formatDateTime(credential.created_at, locale)}`}
                  </td>
                  <td>
                    <div className="pr-row-actions">
                      <Button
                        size="sm"
                        icon="refresh"
                        onClick={() => {
                          setRotating(credential);
                        }}
                        aria-label={`Rotate ${credential.name}`}
                      >
                        Rotate
                      </Button>
                      <Button
                        size="sm"
                        variant="ghost"
                        className="pr-button-danger-text"
                        icon="trash"
                        onClick={() => {
                          remove.reset();
                          setDeleting(credential);
                        }}
                        aria-label={`Delete ${credential.name}`}
                      />
                    </div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </Table>
      )}

      {rotating ? (
        <RotateDialog
          credential={rotating}
          kind={kinds.find((k) => k.kind === rotating.kind)}
          onClose={() => {
            setRotating(null);
          }}
        />
      ) : null}

      <ConfirmDialog
        open={deleting !== null}
        title={`Delete “${deleting?.name ?? ''}”?`}
        confirmLabel="Delete credential"
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
        <p className="pr-dialog-text">The secret is destroyed. This can't be undone.</p>
      </ConfirmDialog>
    </>
  );
}

function applyErrors(
  error: unknown,
  setSecretErrors: (errors: FieldErrors) => void,
  setTopErrors: (errors: FieldErrors) => void,
): { message: string; list: string[] } {
  if (error instanceof PushrailApiError && error.details.length > 0) {
    const { byPrefix, unmatched } = mapDetails(error.details, ['secret'], ['name', 'kind']);
    setSecretErrors(byPrefix.secret ?? {});
    setTopErrors(byPrefix[''] ?? {});
    return {
      message: unmatched.length ? error.message : 'Some fields need attention. Check the highlighted fields.',
      list: unmatched.map((d) => `${d.field}: ${d.message}`),
    };
  }
  return { message: errorMessage(error), list: [] };
}

function CredentialCreate({ onDone }: { onDone: () => void }) {
  const { api, idPrefix, flash } = useEmbed();
  const queryClient = useQueryClient();
  const types = useTypes();
  const inputClass = useInputClass();
  const kinds = allKinds(types.data ?? []);
  const [name, setName] = useState('');
  const [kind, setKind] = useState('');
  const [secret, setSecret] = useState<Record<string, unknown>>({});
  const [topErrors, setTopErrors] = useState<FieldErrors>({});
  const [secretErrors, setSecretErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<{ message: string; list: string[] } | null>(null);
  const selected = kinds.find((k) => k.kind === kind);
  const schema = selected?.schema ?? EMPTY_SCHEMA;
  const id = (field: string) => `${idPrefix}-cred-${field}`;
  const isRole = kind === AWS_ROLE_KIND;
  const awsRole = useAwsRole(isRole);
  // The deployment can't assume roles: nothing of this kind can be saved.
  const roleBlocked = isRole && rolesUnavailable(awsRole.error);
  const chooseKind = (next: string) => {
    setKind(next);
    setSecret({});
    setSecretErrors({});
    setTopErrors(({ kind: _kind, ...rest }) => rest);
  };

  const create = useMutation({
    mutationFn: (input: { name: string; kind: string; secret: Record<string, unknown> }) => api.createCredential(input),
    onSuccess: (credential) => {
      setSecret({});
      void queryClient.invalidateQueries({ queryKey: keys.credentials });
      flash({ tone: 'success', message: `“${credential.name}” saved. Its secret can't be viewed again.` });
      onDone();
    },
    onError: (error) => {
      setFormError(applyErrors(error, setSecretErrors, setTopErrors));
    },
  });

  const submit = (event: SyntheticEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (roleBlocked) return;
    const errors: FieldErrors = {};
    if (!name.trim()) errors.name = 'Give the credential a name.';
    if (!kind) errors.kind = 'Choose a kind.';
    const clean = prune(secret);
    const clientSecretErrors = selected?.schema ? validate(selected.schema, clean) : {};
    setTopErrors(errors);
    setSecretErrors(clientSecretErrors);
    if (Object.keys(errors).length || Object.keys(clientSecretErrors).length) {
      setFormError({ message: 'Some fields need attention. Check the highlighted fields.', list: [] });
      focusFirstInvalid(event.currentTarget);
      return;
    }
    setFormError(null);
    create.mutate({ name: name.trim(), kind, secret: clean });
  };

  if (types.isPending) return <Loading />;

  return (
    <>
      <PanelHeader
        title="Add a credential"
        description="Secrets are encrypted at rest, used only to deliver your events, and never shown again."
        back={{ label: 'Credentials', onClick: onDone }}
      />
      <form
        className="pr-form"
        noValidate
        onSubmit={submit}
        onChange={() => {
          setFormError(null);
        }}
        aria-label="New credential"
        autoComplete="off"
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
          <Field id={id('name')} label="Name" required error={topErrors.name}>
            <input
              id={id('name')}
              className={inputClass}
              value={name}
              maxLength={255}
              placeholder="Production API key"
              autoComplete="off"
              aria-invalid={topErrors.name ? true : undefined}
              aria-describedby={describedBy(id('name'), false, topErrors.name)}
              onChange={(event) => {
                setName(event.target.value);
                setTopErrors(({ name: _name, ...rest }) => rest);
              }}
            />
          </Field>
          <Field id={id('kind')} label="Kind" required error={topErrors.kind}>
            <select
              id={id('kind')}
              className={`${inputClass} pr-select`}
              value={kind}
              aria-invalid={topErrors.kind ? true : undefined}
              aria-describedby={describedBy(id('kind'), false, topErrors.kind)}
              onChange={(event) => {
                chooseKind(event.target.value);
              }}
            >
              <option value="">Choose…</option>
              {kinds.map((k) => (
                <option key={k.kind} value={k.kind}>
                  {kindLabel(k.kind)}
                </option>
              ))}
            </select>
          </Field>
        </Card>
        {isRole ? (
          <AwsRoleSetup
            trust={awsRole}
            types={types.data ?? []}
            noticeId={id('aws-role-unavailable')}
            onUseAccessKey={
              kinds.some((k) => k.kind === 'aws_access_key')
                ? () => {
                    chooseKind('aws_access_key');
                  }
                : undefined
            }
          />
        ) : null}
        {selected && !roleBlocked ? (
          <Card>
            <h3 className="pr-card-title">{kindLabel(selected.kind)}</h3>
            {selected.kind === SAS_KEY_KIND ? (
              <ConnectionStringField
                id={id('paste-connection-string')}
                onParsed={(parsed) => {
                  const next = { ...secret, ...sasKeyFields(parsed) };
                  setSecretErrors(clearChanged(secretErrors, secret, next));
                  setSecret(next);
                }}
              />
            ) : null}
            <SchemaForm
              key={selected.kind}
              schema={schema}
              value={secret}
              onChange={(next) => {
                setSecretErrors(clearChanged(secretErrors, secret, next));
                setSecret(next);
              }}
              errors={secretErrors}
              idPrefix={id(`secret-${selected.kind}`)}
              // A role ARN is no secret (the list shows it as the fingerprint): a plain text
              // field, so that the customer can check what they pasted.
              secret={!isRole}
            />
          </Card>
        ) : null}
        <div className="pr-form-footer">
          <Button onClick={onDone} disabled={create.isPending}>
            Cancel
          </Button>
          <Button
            type="submit"
            variant="primary"
            busy={create.isPending}
            disabled={roleBlocked}
            aria-describedby={roleBlocked ? id('aws-role-unavailable') : undefined}
          >
            Save credential
          </Button>
        </div>
      </form>
    </>
  );
}

function RotateDialog({
  credential,
  kind,
  onClose,
}: {
  credential: Credential;
  kind: CredentialKind | undefined;
  onClose: () => void;
}) {
  const { api, idPrefix, flash } = useEmbed();
  const queryClient = useQueryClient();
  const [secret, setSecret] = useState<Record<string, unknown>>({});
  const [secretErrors, setSecretErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<{ message: string; list: string[] } | null>(null);
  const schema = kind?.schema ?? EMPTY_SCHEMA;
  const formId = `${idPrefix}-rotate-form`;
  const isRole = credential.kind === AWS_ROLE_KIND;
  const awsRole = useAwsRole(isRole);
  const roleBlocked = isRole && rolesUnavailable(awsRole.error);
  const noticeId = `${idPrefix}-rotate-aws-role-unavailable`;

  const rotate = useMutation({
    mutationFn: (value: Record<string, unknown>) => api.rotateCredential(credential.id, value),
    onSuccess: (rotated) => {
      setSecret({});
      void queryClient.invalidateQueries({ queryKey: keys.credentials });
      flash({ tone: 'success', message: `“${rotated.name}” rotated. Deliveries from now on use the new secret.` });
      onClose();
    },
    onError: (error) => {
      setFormError(applyErrors(error, setSecretErrors, () => undefined));
    },
  });

  return (
    <Dialog
      open
      title={`Rotate “${credential.name}”`}
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose} disabled={rotate.isPending}>
            Cancel
          </Button>
          <Button
            type="submit"
            form={formId}
            variant="primary"
            busy={rotate.isPending}
            disabled={roleBlocked}
            aria-describedby={roleBlocked ? noticeId : undefined}
          >
            Rotate credential
          </Button>
        </>
      }
    >
      <form
        id={formId}
        noValidate
        autoComplete="off"
        aria-label={`Rotate ${credential.name}`}
        onSubmit={(event) => {
          event.preventDefault();
          if (roleBlocked) return;
          const clean = prune(secret);
          const errors = kind?.schema ? validate(kind.schema, clean) : {};
          setSecretErrors(errors);
          if (Object.keys(errors).length) {
            focusFirstInvalid(event.currentTarget);
            return;
          }
          setFormError(null);
          rotate.mutate(clean);
        }}
      >
        <p className="pr-dialog-text">
          {isRole
            ? 'Enter the ARN of the role to use from now on. Later deliveries assume the new role.'
            : `Enter the new ${kindPhrase(credential.kind)}. The current secret is destroyed and later deliveries use the new one.`}
        </p>
        {isRole ? <AwsRoleReminder trust={awsRole} noticeId={noticeId} /> : null}
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
        {credential.kind === SAS_KEY_KIND ? (
          <ConnectionStringField
            id={`${idPrefix}-rotate-${credential.id}-paste-connection-string`}
            onParsed={(parsed) => {
              const next = { ...secret, ...sasKeyFields(parsed) };
              setSecretErrors(clearChanged(secretErrors, secret, next));
              setSecret(next);
            }}
          />
        ) : null}
        {roleBlocked ? null : (
          <SchemaForm
            schema={schema}
            value={secret}
            onChange={(next) => {
              setSecretErrors(clearChanged(secretErrors, secret, next));
              setSecret(next);
            }}
            errors={secretErrors}
            idPrefix={`${idPrefix}-rotate-${credential.id}`}
            secret={!isRole}
          />
        )}
      </form>
    </Dialog>
  );
}
