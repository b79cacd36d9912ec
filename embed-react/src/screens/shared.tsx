/** Pieces more than one screen shows. */

import type { Attempt } from '../api.js';
import { PushrailApiError } from '../api.js';
import { formatDateTime, formatDuration } from '../format.js';
import { SignedOutError } from '../token.js';
import { Button, Notice, StatusBadge, Table } from '../ui.js';

export function errorMessage(error: unknown): string {
  if (error instanceof PushrailApiError || error instanceof SignedOutError) return error.message;
  if (error instanceof Error) return error.message;
  return 'Something went wrong.';
}

export function QueryError({ error, onRetry }: { error: unknown; onRetry: () => void }) {
  if (error instanceof SignedOutError) return null;
  return (
    <Notice tone="danger" title="Couldn't load this">
      <p>{errorMessage(error)}</p>
      <Button size="sm" icon="refresh" onClick={onRetry}>
        Try again
      </Button>
    </Notice>
  );
}

export function AttemptsTable({ attempts, locale }: { attempts: Attempt[]; locale?: string }) {
  return (
    <Table label="Attempts">
      <thead>
        <tr>
          <th scope="col" className="pr-num">
            #
          </th>
          <th scope="col">Time</th>
          <th scope="col">Duration</th>
          <th scope="col">Outcome</th>
          <th scope="col">Status code</th>
          <th scope="col">Error</th>
          <th scope="col">Response</th>
        </tr>
      </thead>
      <tbody>
        {attempts.map((attempt) => (
          <tr key={attempt.n} data-attempt={attempt.n}>
            <td className="pr-num">{attempt.n}</td>
            <td className="pr-nowrap">{formatDateTime(attempt.started_at, locale, true)}</td>
            <td className="pr-nowrap">{formatDuration(attempt.duration_ms)}</td>
            <td>
              <StatusBadge status={attempt.outcome} />
            </td>
            <td className="pr-mono">{attempt.status_code ?? '—'}</td>
            <td className="pr-wrap">{attempt.error ?? '—'}</td>
            <td className="pr-excerpt-cell">
              {attempt.response_excerpt ? (
                <pre
                  className="pr-excerpt"
                  tabIndex={0}
                  role="group"
                  aria-label={`Response excerpt of attempt ${String(attempt.n)}`}
                >
                  {attempt.response_excerpt}
                </pre>
              ) : (
                <span className="pr-muted">—</span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </Table>
  );
}

/** One attempt as a description list: what a "Send test event" answers. */
export function AttemptSummary({ attempt, locale }: { attempt: Attempt; locale?: string }) {
  return (
    <div className="pr-attempt-summary">
      <dl className="pr-dl">
        <div>
          <dt>Outcome</dt>
          <dd>
            <StatusBadge status={attempt.outcome} />
          </dd>
        </div>
        <div>
          <dt>Status code</dt>
          <dd className="pr-mono">{attempt.status_code ?? '—'}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{formatDuration(attempt.duration_ms)}</dd>
        </div>
        <div>
          <dt>Time</dt>
          <dd>{formatDateTime(attempt.started_at, locale, true)}</dd>
        </div>
        {attempt.error ? (
          <div className="pr-dl-wide">
            <dt>Error</dt>
            <dd>{attempt.error}</dd>
          </div>
        ) : null}
      </dl>
      {attempt.response_excerpt ? (
        <>
          <p className="pr-subheading">Response</p>
          <pre className="pr-excerpt pr-excerpt-tall" tabIndex={0} role="group" aria-label="Response excerpt">
            {attempt.response_excerpt}
          </pre>
        </>
      ) : null}
    </div>
  );
}
