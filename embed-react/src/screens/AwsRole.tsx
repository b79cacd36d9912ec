/**
 * The setup of an `aws_role` credential: the customer creates an IAM role in their own AWS
 * account that trusts this deployment's account and requires their external id, then pastes its
 * ARN. Everything shown comes from `GET /embed/v1/aws-role`.
 */

import type { UseQueryResult } from '@tanstack/react-query';
import { useRef } from 'react';

import { PushrailApiError, type AwsRoleTrust, type DestinationType } from '../api.js';
import { useEmbed } from '../context.js';
import { Button, Card, CopyButton, Loading, Notice } from '../ui.js';
import { QueryError } from './shared.js';

export const AWS_ROLE_KIND = 'aws_role';

/** Whether the host answered that this deployment can't assume roles (no AWS keys of its own). */
export function rolesUnavailable(error: unknown): error is PushrailApiError {
  return error instanceof PushrailApiError && error.code === 'aws_roles_unavailable';
}

/** What each AWS type's role must be allowed to do, for the permissions step. */
const ACTIONS: Record<string, string> = {
  sqs: 'sqs:SendMessage',
  sns: 'sns:Publish',
  kinesis: 'kinesis:PutRecords',
  eventbridge: 'events:PutEvents',
  s3: 's3:PutObject',
};

function permissionExamples(types: DestinationType[]): { type: string; name: string; action: string }[] {
  return types.flatMap((type) => {
    const action = ACTIONS[type.type];
    const acceptsRoles = (type.credential_kinds ?? []).some((k) => k.kind === AWS_ROLE_KIND);
    return action && acceptsRoles ? [{ type: type.type, name: type.name, action }] : [];
  });
}

/** The order IAM's own editor and documentation write a policy's keys in. */
const POLICY_KEYS = ['Version', 'Id', 'Statement', 'Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition'];

/** Policy keys in IAM's customary order (the host's JSON has them sorted alphabetically); other keys keep theirs. */
function customaryOrder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(customaryOrder);
  if (value === null || typeof value !== 'object') return value;
  const rank = (key: string) => {
    const index = POLICY_KEYS.indexOf(key);
    return index < 0 ? POLICY_KEYS.length : index;
  };
  const entries = Object.entries(value).sort(([a], [b]) => rank(a) - rank(b));
  return Object.fromEntries(entries.map(([key, child]) => [key, customaryOrder(child)]));
}

/** The trust policy as shown and copied: pretty-printed, `Version` first. */
export function formatPolicy(policy: unknown): string {
  return JSON.stringify(customaryOrder(policy), null, 2);
}

/** A labelled value with its Copy button, as one item of a `<dl className="pr-copy-list">`. */
function CopyItem({ label, value, what }: { label: string; value: string; what: string }) {
  const ref = useRef<HTMLElement>(null);
  return (
    <div className="pr-copy-item">
      <dt className="pr-label">{label}</dt>
      <dd className="pr-copy-field">
        <code className="pr-copy-value" ref={ref}>
          {value}
        </code>
        <CopyButton text={value} what={what} source={ref} />
      </dd>
    </div>
  );
}

/** The warning shown when the deployment can't assume roles; `id` is for `aria-describedby`. */
function UnavailableNotice({ id, error, onUseAccessKey }: { id: string; error: PushrailApiError; onUseAccessKey?: () => void }) {
  return (
    <div id={id}>
      <Notice tone="warning" title="IAM roles aren't available">
        <p>{error.message}</p>
        {onUseAccessKey ? (
          <Button size="sm" onClick={onUseAccessKey}>
            Use an AWS access key instead
          </Button>
        ) : null}
      </Notice>
    </div>
  );
}

export interface AwsRoleSetupProps {
  trust: UseQueryResult<AwsRoleTrust>;
  types: DestinationType[];
  /** The id the unavailability notice gets, which the disabled Save button points at. */
  noticeId: string;
  onUseAccessKey?: () => void;
}

/** Steps, the account and external ids and the trust policy, shown above the role ARN's form. */
export function AwsRoleSetup({ trust, types, noticeId, onUseAccessKey }: AwsRoleSetupProps) {
  const { idPrefix } = useEmbed();
  const policyRef = useRef<HTMLPreElement>(null);
  const policyId = `${idPrefix}-aws-role-policy`;

  if (trust.isError) {
    return rolesUnavailable(trust.error) ? (
      <UnavailableNotice id={noticeId} error={trust.error} onUseAccessKey={onUseAccessKey} />
    ) : (
      <QueryError error={trust.error} onRetry={() => void trust.refetch()} />
    );
  }

  const title = (
    <h3 className="pr-card-title">Create the role in your AWS account</h3>
  );
  if (trust.isPending) {
    return (
      <Card>
        {title}
        <Loading label="Loading your AWS setup…" />
      </Card>
    );
  }

  const { account_id: accountId, external_id: externalId, trust_policy: trustPolicy } = trust.data;
  const policy = formatPolicy(trustPolicy);
  const examples = permissionExamples(types);
  return (
    <Card className="pr-aws-role">
      {title}
      <p className="pr-hint pr-aws-role-intro">
        Pushrail assumes this role with your external ID to deliver your events, using short-lived
        keys: no AWS keys of yours are stored.
      </p>
      <ol className="pr-steps">
        <li>
          In the IAM console, create a role (<strong>Roles → Create role</strong>) with{' '}
          <strong>AWS account → Another AWS account</strong> as the trusted entity: account ID{' '}
          <code className="pr-mono">{accountId}</code>, with <strong>Require external ID</strong> ticked and your
          external ID below. Or choose <strong>Custom trust policy</strong> and paste the trust policy below.
        </li>
        <li>
          Attach a permissions policy that allows what the destination does on your resource
          {examples.length ? (
            <>
              :{' '}
              {examples.map((example, index) => (
                <span key={example.type}>
                  {index ? ', ' : ''}
                  <code className="pr-mono">{example.action}</code> for {example.name}
                </span>
              ))}
              .
            </>
          ) : (
            <>
              , e.g. <code className="pr-mono">sqs:SendMessage</code> on your queue.
            </>
          )}
        </li>
        <li>Paste the role&rsquo;s ARN below.</li>
      </ol>
      <dl className="pr-copy-list">
        <CopyItem label="AWS account ID" value={accountId} what="AWS account ID" />
        <CopyItem label="External ID" value={externalId} what="external ID" />
      </dl>
      <div className="pr-code-block">
        <div className="pr-code-header">
          <span className="pr-label" id={policyId}>
            Trust policy
          </span>
          <CopyButton text={policy} what="trust policy" source={policyRef} />
        </div>
        <pre className="pr-code" ref={policyRef} tabIndex={0} role="region" aria-labelledby={policyId}>
          {policy}
        </pre>
      </div>
    </Card>
  );
}

/** The rotate dialog's reminder: the role's trust policy must keep requiring this external id. */
export function AwsRoleReminder({ trust, noticeId }: { trust: UseQueryResult<AwsRoleTrust>; noticeId: string }) {
  if (trust.isError) {
    return rolesUnavailable(trust.error) ? (
      <UnavailableNotice id={noticeId} error={trust.error} />
    ) : (
      <QueryError error={trust.error} onRetry={() => void trust.refetch()} />
    );
  }
  if (trust.isPending) return <Loading label="Loading your external ID…" />;
  return (
    <div className="pr-aws-role-reminder">
      <p className="pr-hint">
        The new role&rsquo;s trust policy must name AWS account <code className="pr-mono">{trust.data.account_id}</code>{' '}
        and require your external ID.
      </p>
      <dl className="pr-copy-list">
        <CopyItem label="External ID" value={trust.data.external_id} what="external ID" />
      </dl>
    </div>
  );
}
