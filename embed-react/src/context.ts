/** What every screen needs: the API client, navigation between tabs, and the flash message. */

import { createContext, useContext } from 'react';

import type { ApiClient } from './api.js';

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
  /** An element of the embed by id, in the page or in `<pushrail-embed>`'s shadow root. */
  byId: (id: string) => HTMLElement | null;
}

export const EmbedContext = createContext<EmbedContextValue | null>(null);

export function useEmbed(): EmbedContextValue {
  const value = useContext(EmbedContext);
  if (!value) throw new Error('Pushrail screens must be rendered inside <PushrailEmbed>.');
  return value;
}

// The screens read and write through the headless hooks (same cache, same session).
export {
  keys,
  useAwsRole,
  useCredentials,
  useDestinations,
  useDestinationTypes as useTypes,
} from './hooks.js';
