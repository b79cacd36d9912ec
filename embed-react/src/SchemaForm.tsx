/**
 * A form generated from a JSON Schema: one control per property, chosen by the schema alone, so a
 * new destination type or credential kind needs no UI code. Secret forms render every text as a
 * write-only password input.
 */

import { useState } from 'react';

import type { JsonSchema } from './api.js';
import { fieldKind, labelOf, orderedProperties, type FieldErrors } from './schema.js';
import { cx } from './theme.js';
import { Button, describedBy, Field, Icon, useInputClass } from './ui.js';

export interface SchemaFormProps {
  schema: JsonSchema;
  value: Record<string, unknown>;
  onChange: (value: Record<string, unknown>) => void;
  /** Messages by path relative to this form (`url`, `headers.X-Key`). */
  errors?: FieldErrors;
  /** Prefix of element ids; keep it unique on the page. */
  idPrefix: string;
  /** Every text input is a write-only password field (credential secrets). */
  secret?: boolean;
  disabled?: boolean;
}

export function SchemaForm({ schema, value, onChange, errors = {}, idPrefix, secret, disabled }: SchemaFormProps) {
  const required = new Set(schema.required ?? []);
  // The schema's own description (where to find a credential's key, say) introduces the form.
  const description = typeof schema.description === 'string' && schema.description ? schema.description : undefined;
  const descriptionId = `${idPrefix}-description`;
  return (
    <div
      className="pr-schema-form"
      role={description ? 'group' : undefined}
      aria-describedby={description ? descriptionId : undefined}
    >
      {description ? (
        <p className="pr-hint pr-schema-description" id={descriptionId}>
          {description}
        </p>
      ) : null}
      {orderedProperties(schema).map(([name, child]) => (
        <SchemaField
          key={name}
          name={name}
          path={name}
          schema={child}
          required={required.has(name)}
          value={value[name]}
          onChange={(next) => {
            onChange(withKey(value, name, next));
          }}
          errors={errors}
          idPrefix={idPrefix}
          secret={secret === true}
          disabled={disabled === true}
        />
      ))}
    </div>
  );
}

/** A copy of `object` with `key` set to `value`, or without `key` when `value` is undefined. */
function withKey(object: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const copy = Object.fromEntries(Object.entries(object).filter(([k]) => k !== key));
  if (value !== undefined) copy[key] = value;
  return copy;
}

interface SchemaFieldProps {
  name: string;
  path: string;
  schema: JsonSchema;
  required: boolean;
  value: unknown;
  onChange: (value: unknown) => void;
  errors: FieldErrors;
  idPrefix: string;
  secret: boolean;
  disabled: boolean;
}

function fieldId(idPrefix: string, path: string): string {
  return `${idPrefix}-${path.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

function placeholderOf(schema: JsonSchema): string | undefined {
  const fallback = schema.default;
  if (typeof fallback === 'string' || typeof fallback === 'number' || typeof fallback === 'boolean') {
    return `${String(fallback)} (default)`;
  }
  const examples = schema.examples;
  if (Array.isArray(examples) && typeof examples[0] === 'string') return examples[0];
  if (schema.format === 'uri' || schema.format === 'url') return 'https://';
  return undefined;
}

function SchemaField(props: SchemaFieldProps) {
  const { name, path, schema, required, value, onChange, errors, idPrefix, secret, disabled } = props;
  const id = fieldId(idPrefix, path);
  const label = labelOf(name, schema);
  const hint = typeof schema.description === 'string' ? schema.description : undefined;
  const error = errors[path];
  const inputClass = useInputClass();
  const kind = fieldKind(schema);
  const aria = {
    id,
    'aria-describedby': describedBy(id, hint, error),
    'aria-invalid': error ? true : undefined,
    disabled,
  };

  switch (kind) {
    case 'const':
      return null;
    case 'enum': {
      const options = schema.enum ?? [];
      const index = options.findIndex((option) => option === value);
      return (
        <Field id={id} label={label} required={required} hint={hint} error={error}>
          <select
            {...aria}
            className={cx(inputClass, 'pr-select')}
            required={required}
            value={index >= 0 ? String(index) : ''}
            onChange={(event) => {
              const i = event.target.value;
              onChange(i === '' ? undefined : options[Number(i)]);
            }}
          >
            <option value="">{required ? 'Choose…' : 'None'}</option>
            {options.map((option, i) => (
              <option key={i} value={String(i)}>
                {typeof option === 'string' ? option : JSON.stringify(option)}
              </option>
            ))}
          </select>
        </Field>
      );
    }
    case 'boolean':
      return (
        <Field id={id} label={label} required={required} hint={hint} error={error} inline>
          <input
            {...aria}
            type="checkbox"
            className="pr-checkbox"
            checked={value === true}
            onChange={(event) => {
              onChange(event.target.checked);
            }}
          />
        </Field>
      );
    case 'integer':
    case 'number':
      return (
        <Field id={id} label={label} required={required} hint={hint} error={error}>
          <input
            {...aria}
            type="number"
            inputMode={kind === 'integer' ? 'numeric' : 'decimal'}
            className={inputClass}
            required={required}
            min={schema.minimum}
            max={schema.maximum}
            step={kind === 'integer' ? 1 : 'any'}
            placeholder={placeholderOf(schema)}
            value={typeof value === 'number' ? String(value) : ''}
            onChange={(event) => {
              const text = event.target.value;
              onChange(text === '' ? undefined : Number(text));
            }}
          />
        </Field>
      );
    case 'string': {
      const writeOnly = secret || schema.writeOnly === true;
      const multiline = schema.format === 'textarea' || schema['x-multiline'] === true;
      const common = {
        ...aria,
        className: cx(inputClass, writeOnly && 'pr-secret'),
        required,
        maxLength: schema.maxLength,
        placeholder: writeOnly ? undefined : placeholderOf(schema),
        autoComplete: writeOnly ? 'new-password' : 'off',
        spellCheck: false,
        value: typeof value === 'string' ? value : '',
      };
      const change = (text: string) => {
        onChange(text === '' ? undefined : text);
      };
      return (
        <Field
          id={id}
          label={
            writeOnly ? (
              <>
                {label}
                <Icon name="lock" className="pr-label-icon" />
              </>
            ) : (
              label
            )
          }
          required={required}
          hint={hint ?? (writeOnly ? 'Write-only: stored encrypted and never shown again.' : undefined)}
          error={error}
        >
          {multiline ? (
            <textarea
              {...common}
              rows={4}
              onChange={(event) => {
                change(event.target.value);
              }}
            />
          ) : (
            <input
              {...common}
              type={writeOnly ? 'password' : schema.format === 'uri' || schema.format === 'url' ? 'url' : schema.format === 'email' ? 'email' : 'text'}
              onChange={(event) => {
                change(event.target.value);
              }}
            />
          )}
        </Field>
      );
    }
    case 'object': {
      const object = value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
      const childRequired = new Set(schema.required ?? []);
      return (
        <fieldset className="pr-fieldset" disabled={disabled}>
          <legend className="pr-legend">{label}</legend>
          {hint ? <p className="pr-hint">{hint}</p> : null}
          {orderedProperties(schema).map(([childName, child]) => (
            <SchemaField
              key={childName}
              {...props}
              name={childName}
              path={`${path}.${childName}`}
              schema={child}
              required={childRequired.has(childName)}
              value={object[childName]}
              onChange={(next) => {
                const copy = withKey(object, childName, next);
                onChange(Object.keys(copy).length ? copy : undefined);
              }}
            />
          ))}
        </fieldset>
      );
    }
    case 'map':
      return <MapField {...props} id={id} label={label} hint={hint} />;
    case 'list':
      return <ListField {...props} id={id} label={label} hint={hint} />;
    case 'json':
      return <JsonField {...props} id={id} label={label} hint={hint} />;
  }
}

interface Row {
  key: string;
  value: string;
}

/** An object whose keys the customer chooses (custom headers): rows of name and value. */
function MapField(props: SchemaFieldProps & { id: string; label: string; hint?: string }) {
  const { id, label, hint, path, schema, value, onChange, errors, disabled, secret } = props;
  const inputClass = useInputClass();
  const [rows, setRows] = useState<Row[]>(() =>
    Object.entries((value as Record<string, unknown> | undefined) ?? {}).map(([key, item]) => ({
      key,
      value: typeof item === 'string' ? item : JSON.stringify(item),
    })),
  );
  const valueSchema = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : {};
  const numeric = valueSchema.type === 'integer' || valueSchema.type === 'number';
  const max = schema.maxProperties;
  const update = (next: Row[]) => {
    setRows(next);
    const object: Record<string, unknown> = {};
    for (const row of next) {
      if (row.key.trim() === '') continue;
      object[row.key.trim()] = numeric && row.value !== '' ? Number(row.value) : row.value;
    }
    onChange(Object.keys(object).length ? object : undefined);
  };
  const error = errors[path];
  const singular = label.replace(/s$/i, '').toLowerCase();
  return (
    <fieldset className="pr-fieldset pr-map" disabled={disabled} aria-describedby={describedBy(id, hint, error)}>
      <legend className="pr-legend">
        {label}
        <span className="pr-optional">Optional</span>
      </legend>
      {hint ? (
        <p className="pr-hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      {rows.map((row, i) => {
        const rowError = row.key ? errors[`${path}.${row.key.trim()}`] : undefined;
        const rowId = `${id}-${String(i)}`;
        return (
          <div key={i} className="pr-map-row">
            <input
              id={`${rowId}-key`}
              className={inputClass}
              aria-label={`${label} ${String(i + 1)} name`}
              placeholder="Name"
              value={row.key}
              spellCheck={false}
              aria-invalid={rowError ? true : undefined}
              onChange={(event) => {
                update(rows.map((r, j) => (j === i ? { ...r, key: event.target.value } : r)));
              }}
            />
            <input
              id={`${rowId}-value`}
              className={inputClass}
              aria-label={`${label} ${String(i + 1)} value`}
              placeholder="Value"
              type={secret ? 'password' : numeric ? 'number' : 'text'}
              autoComplete={secret ? 'new-password' : 'off'}
              value={row.value}
              spellCheck={false}
              aria-invalid={rowError ? true : undefined}
              aria-describedby={rowError ? `${rowId}-error` : undefined}
              onChange={(event) => {
                update(rows.map((r, j) => (j === i ? { ...r, value: event.target.value } : r)));
              }}
            />
            <button
              type="button"
              className="pr-icon-button"
              aria-label={`Remove ${label} ${String(i + 1)}`}
              onClick={() => {
                update(rows.filter((_, j) => j !== i));
              }}
            >
              <Icon name="trash" />
            </button>
            {rowError ? (
              <p className="pr-error pr-map-error" id={`${rowId}-error`}>
                <Icon name="alert" />
                <span>{rowError}</span>
              </p>
            ) : null}
          </div>
        );
      })}
      <div>
        <Button
          size="sm"
          variant="ghost"
          icon="plus"
          disabled={disabled || (max !== undefined && rows.length >= max)}
          onClick={() => {
            setRows([...rows, { key: '', value: '' }]);
          }}
        >
          Add {singular}
        </Button>
      </div>
      {error ? (
        <p className="pr-error" id={`${id}-error`}>
          <Icon name="alert" />
          <span>{error}</span>
        </p>
      ) : null}
    </fieldset>
  );
}

/** An array of plain values: one input per item. */
function ListField(props: SchemaFieldProps & { id: string; label: string; hint?: string }) {
  const { id, label, hint, path, schema, value, onChange, errors, disabled, required } = props;
  const inputClass = useInputClass();
  const items = Array.isArray(value) ? (value as unknown[]) : [];
  const itemSchema = schema.items ?? {};
  const numeric = itemSchema.type === 'integer' || itemSchema.type === 'number';
  const set = (next: unknown[]) => {
    onChange(next.length ? next : undefined);
  };
  const error = errors[path];
  return (
    <fieldset className="pr-fieldset" disabled={disabled} aria-describedby={describedBy(id, hint, error)}>
      <legend className="pr-legend">
        {label}
        {!required ? <span className="pr-optional">Optional</span> : null}
      </legend>
      {hint ? (
        <p className="pr-hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      {items.map((item, i) => {
        const itemError = errors[`${path}[${String(i)}]`];
        return (
          <div key={i} className="pr-map-row pr-list-row">
            <input
              id={`${id}-${String(i)}`}
              className={inputClass}
              aria-label={`${label} ${String(i + 1)}`}
              type={numeric ? 'number' : 'text'}
              value={typeof item === 'string' || typeof item === 'number' ? String(item) : ''}
              aria-invalid={itemError ? true : undefined}
              onChange={(event) => {
                const text = event.target.value;
                set(items.map((old, j) => (j === i ? (numeric && text !== '' ? Number(text) : text) : old)));
              }}
            />
            <button
              type="button"
              className="pr-icon-button"
              aria-label={`Remove ${label} ${String(i + 1)}`}
              onClick={() => {
                set(items.filter((_, j) => j !== i));
              }}
            >
              <Icon name="trash" />
            </button>
            {itemError ? (
              <p className="pr-error pr-map-error">
                <Icon name="alert" />
                <span>{itemError}</span>
              </p>
            ) : null}
          </div>
        );
      })}
      <div>
        <Button
          size="sm"
          variant="ghost"
          icon="plus"
          disabled={disabled || (schema.maxItems !== undefined && items.length >= schema.maxItems)}
          onClick={() => {
            set([...items, numeric ? undefined : '']);
          }}
        >
          Add item
        </Button>
      </div>
      {error ? (
        <p className="pr-error" id={`${id}-error`}>
          <Icon name="alert" />
          <span>{error}</span>
        </p>
      ) : null}
    </fieldset>
  );
}

/** Schema constructs outside the subset (oneOf, arrays of objects, ...) are edited as JSON. */
function JsonField(props: SchemaFieldProps & { id: string; label: string; hint?: string }) {
  const { id, label, hint, path, value, onChange, errors, disabled, required } = props;
  const inputClass = useInputClass();
  const [text, setText] = useState(() => (value === undefined ? '' : JSON.stringify(value, null, 2)));
  const [parseError, setParseError] = useState<string | null>(null);
  const error = parseError ?? errors[path];
  return (
    <Field id={id} label={label} required={required} hint={hint ?? 'JSON'} error={error}>
      <textarea
        id={id}
        className={cx(inputClass, 'pr-mono')}
        rows={5}
        spellCheck={false}
        disabled={disabled}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, true, error)}
        value={text}
        onChange={(event) => {
          const next = event.target.value;
          setText(next);
          if (next.trim() === '') {
            setParseError(null);
            onChange(undefined);
            return;
          }
          try {
            onChange(JSON.parse(next));
            setParseError(null);
          } catch {
            setParseError('Not valid JSON yet.');
          }
        }}
      />
    </Field>
  );
}
