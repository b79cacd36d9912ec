/** What every screen needs: the API client, navigation between tabs, and the flash message. */

import { createContext, useContext } from 'react';
import { useQuery, type UseQueryResult } from '@tanstack/react-query';

import type { ApiClient, AwsRoleTrust, Credential, Destination, DestinationType } from './api.js';

export type TabId = 'destinations' | 'credentials' | 'deliveries' | 'replay' | 'audit';

export interface Flash {
  tone: 'success' | 'danger' | 'info';
  message: string;
}

export interface EmbedContextValue {
  api: ApiClient;
  locale?: string;
  idPrefix: string;
  flash: (flash: Flash | null) => void;
  /** Switches tab; with a delivery id, opens that delivery's detail in the log. */
  navigate: (tab: TabId, options?: { deliveryId?: string }) => void;
}

export const EmbedContext = createContext<EmbedContextValue | null>(null);

export function useEmbed(): EmbedContextValue {
  const value = useContext(EmbedContext);
  if (!value) throw new Error('Pushrail screens must be rendered inside <PushrailEmbed>.');
  return value;
}

export const keys = {
  types: ['pushrail', 'destination-types'] as const,
  destinations: ['pushrail', 'destinations'] as const,
  credentials: ['pushrail', 'credentials'] as const,
  deliveries: ['pushrail', 'deliveries'] as const,
  delivery: (id: string) => ['pushrail', 'delivery', id] as const,
  awsRole: ['pushrail', 'aws-role'] as const,
  audit: ['pushrail', 'audit'] as const,
};

export function useTypes(): UseQueryResult<DestinationType[]> {
  const { api } = useEmbed();
  return useQuery({ queryKey: keys.types, queryFn: () => api.listTypes(), staleTime: 5 * 60_000 });
}

export function useDestinations(): UseQueryResult<Destination[]> {
  const { api } = useEmbed();
  return useQuery({ queryKey: keys.destinations, queryFn: () => api.listDestinations() });
}

export function useCredentials(): UseQueryResult<Credential[]> {
  const { api } = useEmbed();
  return useQuery({ queryKey: keys.credentials, queryFn: () => api.listCredentials() });
}

/** The trust setup of an `aws_role` credential; asked for only when `enabled` (that kind is chosen). */
export function useAwsRole(enabled = true): UseQueryResult<AwsRoleTrust> {
  const { api } = useEmbed();
  // The external id and account do not change: no need to ask again within a session.
  return useQuery({ queryKey: keys.awsRole, queryFn: () => api.getAwsRole(), enabled, staleTime: Infinity });
}
