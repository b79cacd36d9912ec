/** The customer's own audit trail: who changed what, filterable by action and time, paged like the log. */

import type { AuditEntry, AuditFilters } from '../api.js';
import { useCredentials, useDestinations, useEmbed } from '../context.js';
import { useAudit } from '../hooks.js';
import { formatDateTime, fromLocalInput, plural } from '../format.js';
import { Button, EmptyState, Field, Loading, PanelHeader, Table, useInputClass } from '../ui.js';
import { QueryError } from './shared.js';

/** The filter form's values: an action (or `family.*`) and datetime-local strings, as typed. */
export interface AuditLogFilters {
  action: string;
  since: string;
  until: string;
}

export const emptyAuditFilters: AuditLogFilters = { action: '', since: '', until: '' };

const PAGE_SIZE = 25;

const ACTIONS: Record<string, string> = {
  'destination.create': 'Destination created',
  'destination.update': 'Destination updated',
  'destination.delete': 'Destination deleted',
  'credential.create': 'Credential added',
  'credential.rotate': 'Credential rotated',
  'credential.delete': 'Credential deleted',
  'replay.create': 'Deliveries replayed',
  'session.issue': 'Session started',
  'session.revoke': 'Session ended',
  'session.revoke_all': 'All sessions ended',
  'sub_tenant.delete': 'Account closed',
};

/** The filter's choices: each family (`credential.*`), then its actions. */
const GROUPS: { label: string; family: string; actions: string[] }[] = [
  { label: 'Destinations', family: 'destination', actions: ['destination.create', 'destination.update', 'destination.delete'] },
  { label: 'Credentials', family: 'credential', actions: ['credential.create', 'credential.rotate', 'credential.delete'] },
  { label: 'Replays', family: 'replay', actions: ['replay.create'] },
  { label: 'Sessions', family: 'session', actions: ['session.issue', 'session.revoke', 'session.revoke_all'] },
];

export function actionLabel(action: string): string {
  return ACTIONS[action] ?? action;
}

/** `session:ses_…` is one of this customer's sessions (this embed); `tenant:…` the vendor's operator. */
function actor(actor: string): { label: string; id?: string } {
  const [kind, id] = actor.split(/:(.*)/s);
  if (kind === 'session' && id) return { label: 'Session', id };
  if (kind === 'tenant') return { label: 'Operator' };
  return { label: actor };
}

export function AuditPanel({
  filters,
  setFilters,
}: {
  filters: AuditLogFilters;
  setFilters: (filters: AuditLogFilters) => void;
}) {
  const { locale, idPrefix } = useEmbed();
  const destinations = useDestinations();
  const credentials = useCredentials();
  const inputClass = useInputClass();
  const query: AuditFilters = {
    action: filters.action,
    since: fromLocalInput(filters.since),
    until: fromLocalInput(filters.until),
  };
  const audit = useAudit(query, { pageSize: PAGE_SIZE });
  const rows = audit.data?.pages.flatMap((page) => page.items) ?? [];
  const filtered = Object.values(filters).some(Boolean);
  const id = (field: string) => `${idPrefix}-audit-${field}`;
  const set = (patch: Partial<AuditLogFilters>) => {
    setFilters({ ...filters, ...patch });
  };
  /** What an entry's target is called today, when it still exists. */
  const nameOf = (entry: AuditEntry): string | undefined => {
    if (entry.action.startsWith('destination.')) return destinations.data?.find((d) => d.id === entry.target)?.name;
    if (entry.action.startsWith('credential.')) return credentials.data?.find((c) => c.id === entry.target)?.name;
    return undefined;
  };

  return (
    <>
      <PanelHeader
        title="Audit log"
        description="Every change made to your destinations and credentials, replays and sessions. Newest first."
        actions={
          <>
            {filtered ? (
              <Button
                variant="ghost"
                onClick={() => {
                  setFilters(emptyAuditFilters);
                }}
              >
                Clear filters
              </Button>
            ) : null}
            <Button icon="refresh" busy={audit.isRefetching && !audit.isFetchingNextPage} onClick={() => void audit.refetch()}>
              Refresh
            </Button>
          </>
        }
      />
      <form
        className="pr-filters"
        aria-label="Filter the audit log"
        onSubmit={(event) => {
          event.preventDefault();
        }}
      >
        <Field id={id('action')} label="Action" optionalTag={false}>
          <select
            id={id('action')}
            className={`${inputClass} pr-select`}
            value={filters.action}
            onChange={(event) => {
              set({ action: event.target.value });
            }}
          >
            <option value="">All actions</option>
            {GROUPS.map((group) => (
              <optgroup key={group.family} label={group.label}>
                {group.actions.length > 1 ? <option value={`${group.family}.*`}>All {group.label.toLowerCase()}</option> : null}
                {group.actions.map((action) => (
                  <option key={action} value={action}>
                    {actionLabel(action)}
                  </option>
                ))}
              </optgroup>
            ))}
          </select>
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

      {audit.isPending ? (
        <Loading />
      ) : audit.isError && rows.length === 0 ? (
        <QueryError error={audit.error} onRetry={() => void audit.refetch()} />
      ) : rows.length === 0 ? (
        <EmptyState icon="clock" title={filtered ? 'No entries match these filters' : 'Nothing recorded yet'}>
          <p>{filtered ? 'Try a wider time range or clear the filters.' : 'Changes to your settings appear here.'}</p>
        </EmptyState>
      ) : (
        <>
          <Table label="Audit log">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">By</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((entry, index) => {
                const name = nameOf(entry);
                const by = actor(entry.actor);
                return (
                  <tr key={`${entry.at}-${entry.action}-${entry.target}-${String(index)}`} data-action={entry.action}>
                    <td className="pr-nowrap">{formatDateTime(entry.at, locale, true)}</td>
                    <td>
                      {actionLabel(entry.action)}
                      <div className="pr-cell-sub pr-mono">{entry.action}</div>
                    </td>
                    <td>
                      {name ? (
                        <>
                          {name}
                          <div className="pr-cell-sub pr-mono">{entry.target}</div>
                        </>
                      ) : (
                        <span className="pr-mono">{entry.target}</span>
                      )}
                    </td>
                    <td>
                      {by.label}
                      {by.id ? <div className="pr-cell-sub pr-mono">{by.id}</div> : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </Table>
          <div className="pr-pagination">
            <span className="pr-muted">{plural(rows.length, 'entry', 'entries')} shown</span>
            {audit.hasNextPage ? (
              <Button busy={audit.isFetchingNextPage} onClick={() => void audit.fetchNextPage()}>
                Load more
              </Button>
            ) : null}
          </div>
        </>
      )}
    </>
  );
}
