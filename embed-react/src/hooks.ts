/**
 * Headless hooks: the embed's data and actions without its UI, for vendors who draw their own.
 * Every hook reads the surrounding `<PushrailProvider>` (same session, token refresh and 401 retry
 * as `<PushrailEmbed>`) and uses its query cache; the embed's screens use these same hooks.
 */

import {
  useInfiniteQuery,
  useMutation,
  useQuery,
  type InfiniteData,
  type QueryClient,
  type UseInfiniteQueryResult,
  type UseMutationResult,
  type UseQueryResult,
} from '@tanstack/react-query';

import type {
  AuditEntry,
  AuditFilters,
  AwsRoleTrust,
  Credential,
  Delivery,
  DeliveryFilters,
  Destination,
  DestinationInput,
  DestinationType,
  Page,
  ReplayRequest,
  ReplayResult,
  TestResult,
} from './api.js';
import { usePushrailSession } from './session.js';

/** Query keys, for `queryClient.invalidateQueries` from your own code. */
export const keys = {
  types: ['pushrail', 'destination-types'] as const,
  destinations: ['pushrail', 'destinations'] as const,
  credentials: ['pushrail', 'credentials'] as const,
  deliveries: ['pushrail', 'deliveries'] as const,
  delivery: (id: string) => ['pushrail', 'delivery', id] as const,
  awsRole: ['pushrail', 'aws-role'] as const,
  audit: ['pushrail', 'audit'] as const,
};

const DEFAULT_PAGE_SIZE = 25;

/** The destination types this deployment offers, with their config and credential schemas. */
export function useDestinationTypes(): UseQueryResult<DestinationType[]> {
  const { api, queryClient } = usePushrailSession();
  return useQuery({ queryKey: keys.types, queryFn: () => api.listTypes(), staleTime: 5 * 60_000 }, queryClient);
}

/** The customer's destinations. */
export function useDestinations(): UseQueryResult<Destination[]> {
  const { api, queryClient } = usePushrailSession();
  return useQuery({ queryKey: keys.destinations, queryFn: () => api.listDestinations() }, queryClient);
}

/** One destination, from the list (`null` once the list is loaded without it). */
export function useDestination(id: string): UseQueryResult<Destination | null> {
  const { api, queryClient } = usePushrailSession();
  return useQuery(
    {
      queryKey: keys.destinations,
      queryFn: () => api.listDestinations(),
      select: (list: Destination[]) => list.find((d) => d.id === id) ?? null,
    },
    queryClient,
  );
}

/** The customer's credentials (never their secrets: the API doesn't return them). */
export function useCredentials(): UseQueryResult<Credential[]> {
  const { api, queryClient } = usePushrailSession();
  return useQuery({ queryKey: keys.credentials, queryFn: () => api.listCredentials() }, queryClient);
}

/** The trust setup of an `aws_role` credential; asked for only when `enabled`. */
export function useAwsRole(enabled = true): UseQueryResult<AwsRoleTrust> {
  const { api, queryClient } = usePushrailSession();
  // The external id and account do not change: no need to ask again within a session.
  return useQuery({ queryKey: keys.awsRole, queryFn: () => api.getAwsRole(), enabled, staleTime: Infinity }, queryClient);
}

export interface PageOptions {
  /** Items per page (default 25); `fetchNextPage()` follows `next_cursor`. */
  pageSize?: number;
  /** Polls every this many milliseconds (the embed's log: 5000); off by default. */
  refetchInterval?: number | false;
  enabled?: boolean;
}

/** The delivery log, newest first, filtered; pages follow `next_cursor` (`fetchNextPage`). */
export function useDeliveries(
  filters: DeliveryFilters = {},
  options: PageOptions = {},
): UseInfiniteQueryResult<InfiniteData<Page<Delivery>, string | null>> {
  const { api, queryClient } = usePushrailSession();
  const limit = options.pageSize ?? DEFAULT_PAGE_SIZE;
  return useInfiniteQuery(
    {
      queryKey: [...keys.deliveries, 'list', filters, limit],
      queryFn: ({ pageParam }) => api.listDeliveries(filters, pageParam, limit),
      initialPageParam: null as string | null,
      getNextPageParam: (page) => page.next_cursor,
      refetchInterval: options.refetchInterval ?? false,
      enabled: options.enabled ?? true,
    },
    queryClient,
  );
}

/** One delivery with its payload and attempts; polled every second while it is pending or delivering. */
export function useDelivery(id: string): UseQueryResult<Delivery> {
  const { api, queryClient } = usePushrailSession();
  return useQuery(
    {
      queryKey: keys.delivery(id),
      queryFn: () => api.getDelivery(id),
      refetchInterval: (query) => {
        const status = query.state.data?.status;
        return status === 'pending' || status === 'delivering' ? 1_000 : false;
      },
    },
    queryClient,
  );
}

/** The customer's own audit trail, newest first, filtered; pages follow `next_cursor`. */
export function useAudit(
  filters: AuditFilters = {},
  options: PageOptions = {},
): UseInfiniteQueryResult<InfiniteData<Page<AuditEntry>, string | null>> {
  const { api, queryClient } = usePushrailSession();
  const limit = options.pageSize ?? DEFAULT_PAGE_SIZE;
  return useInfiniteQuery(
    {
      queryKey: [...keys.audit, filters, limit],
      queryFn: ({ pageParam }) => api.listAudit(filters, pageParam, limit),
      initialPageParam: null as string | null,
      getNextPageParam: (page) => page.next_cursor,
      refetchInterval: options.refetchInterval ?? false,
      enabled: options.enabled ?? true,
    },
    queryClient,
  );
}

function invalidate(queryClient: QueryClient, ...queryKeys: (readonly unknown[])[]): void {
  for (const queryKey of queryKeys) void queryClient.invalidateQueries({ queryKey });
}

/** Creates a destination; the list (and the audit trail) refetch. */
export function useCreateDestination(): UseMutationResult<Destination, Error, DestinationInput> {
  const { api, queryClient } = usePushrailSession();
  return useMutation(
    {
      mutationFn: (input: DestinationInput) => api.createDestination(input),
      onSuccess: () => {
        invalidate(queryClient, keys.destinations, keys.audit);
      },
    },
    queryClient,
  );
}

/** Changes a destination (a partial update: `{ enabled: false }` pauses it). */
export function useUpdateDestination(): UseMutationResult<Destination, Error, { id: string; input: DestinationInput }> {
  const { api, queryClient } = usePushrailSession();
  return useMutation(
    {
      mutationFn: ({ id, input }: { id: string; input: DestinationInput }) => api.updateDestination(id, input),
      onSuccess: () => {
        invalidate(queryClient, keys.destinations, keys.audit);
      },
    },
    queryClient,
  );
}

/** Deletes a destination by id. */
export function useDeleteDestination(): UseMutationResult<void, Error, string> {
  const { api, queryClient } = usePushrailSession();
  return useMutation(
    {
      mutationFn: (id: string) => api.deleteDestination(id),
      onSuccess: () => {
        invalidate(queryClient, keys.destinations, keys.audit);
      },
    },
    queryClient,
  );
}

/** Sends a test event to a destination by id and answers the attempt. */
export function useTestDestination(): UseMutationResult<TestResult, Error, string> {
  const { api, queryClient } = usePushrailSession();
  return useMutation(
    {
      mutationFn: (id: string) => api.testDestination(id),
      onSuccess: () => {
        invalidate(queryClient, keys.deliveries);
      },
    },
    queryClient,
  );
}

/** Stores a credential (`{ name, kind, secret }`); the secret can't be read back. */
export function useCreateCredential(): UseMutationResult<
  Credential,
  Error,
  { name: string; kind: string; secret: Record<string, unknown> }
> {
  const { api, queryClient } = usePushrailSession();
  return useMutation(
    {
      mutationFn: (input: { name: string; kind: string; secret: Record<string, unknown> }) => api.createCredential(input),
      onSuccess: () => {
        invalidate(queryClient, keys.credentials, keys.audit);
      },
    },
    queryClient,
  );
}

/** Replaces a credential's secret. */
export function useRotateCredential(): UseMutationResult<Credential, Error, { id: string; secret: Record<string, unknown> }> {
  const { api, queryClient } = usePushrailSession();
  return useMutation(
    {
      mutationFn: ({ id, secret }: { id: string; secret: Record<string, unknown> }) => api.rotateCredential(id, secret),
      onSuccess: () => {
        invalidate(queryClient, keys.credentials, keys.audit);
      },
    },
    queryClient,
  );
}

/** Deletes a credential by id (Pushrail refuses while a destination uses it). */
export function useDeleteCredential(): UseMutationResult<void, Error, string> {
  const { api, queryClient } = usePushrailSession();
  return useMutation(
    {
      mutationFn: (id: string) => api.deleteCredential(id),
      onSuccess: () => {
        invalidate(queryClient, keys.credentials, keys.audit);
      },
    },
    queryClient,
  );
}

/**
 * Replays one delivery (`{ delivery_id }`) or every failed (or succeeded) delivery of a window
 * (`{ since, until, destination_id?, status? }`); the log and that delivery refetch.
 */
export function useReplay(): UseMutationResult<ReplayResult, Error, ReplayRequest> {
  const { api, queryClient } = usePushrailSession();
  return useMutation(
    {
      mutationFn: (request: ReplayRequest) => api.replay(request),
      onSuccess: (_, request) => {
        invalidate(queryClient, keys.deliveries, keys.audit);
        if ('delivery_id' in request) invalidate(queryClient, keys.delivery(request.delivery_id));
      },
    },
    queryClient,
  );
}
