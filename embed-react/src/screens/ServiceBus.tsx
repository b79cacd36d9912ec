/**
 * "Paste a connection string" for an `azure_sas_key` credential (a Service Bus shared access
 * policy): the customer pastes what the Azure portal shows, and the policy's name and key are
 * filled in. The string stays in this field and is cleared once read; only the fields it filled
 * are ever sent.
 */

import { useState } from 'react';

import { parseServiceBusConnectionString, type ServiceBusConnectionString } from '../connectionString.js';
import { describedBy, Field, useInputClass } from '../ui.js';

export const SAS_KEY_KIND = 'azure_sas_key';

export const CONNECTION_STRING_HINT =
  'Azure portal → your Service Bus namespace → Settings → Shared access policies → a policy with the Send claim → Primary connection string';

/** The secret fields of an `azure_sas_key` credential that a connection string fills. */
export function sasKeyFields(parsed: ServiceBusConnectionString): { key_name: string; key: string } {
  return { key_name: parsed.keyName, key: parsed.key };
}

export interface ConnectionStringFieldProps {
  /** The input's id; keep it unique on the page. */
  id: string;
  /** Called with what a connection string that reads well holds. */
  onParsed: (parsed: ServiceBusConnectionString) => void;
  disabled?: boolean;
}

export function ConnectionStringField({ id, onParsed, disabled }: ConnectionStringFieldProps) {
  const inputClass = useInputClass();
  const [text, setText] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [filled, setFilled] = useState('');
  const statusId = `${id}-status`;
  return (
    <div className="pr-connection-string">
      <Field id={id} label="Paste a connection string" hint={CONNECTION_STRING_HINT} error={error}>
        <input
          id={id}
          className={inputClass}
          // The string holds the key: as write-only as the key's own field.
          type="password"
          autoComplete="new-password"
          spellCheck={false}
          disabled={disabled}
          value={text}
          placeholder="Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…"
          aria-invalid={error ? true : undefined}
          aria-describedby={[describedBy(id, true, error), statusId].join(' ')}
          onChange={(event) => {
            const next = event.target.value;
            setFilled('');
            if (next.trim() === '') {
              setText('');
              setError(undefined);
              return;
            }
            const parsed = parseServiceBusConnectionString(next);
            if (!parsed.ok) {
              setText(next);
              setError(parsed.error);
              return;
            }
            // Read: the string is dropped here, the fields it filled carry on.
            setText('');
            setError(undefined);
            setFilled(`Filled in the policy name “${parsed.value.keyName}” and its key from the connection string.`);
            onParsed(parsed.value);
          }}
        />
      </Field>
      <p className="pr-hint pr-connection-string-status" id={statusId} role="status">
        {filled}
      </p>
    </div>
  );
}
