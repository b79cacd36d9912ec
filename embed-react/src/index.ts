export { PushrailEmbed, type PushrailEmbedProps } from './PushrailEmbed.js';
export { PushrailProvider, usePushrailSession, type PushrailProviderProps, type PushrailSession } from './session.js';
export {
  keys as pushrailQueryKeys,
  useAudit,
  useAwsRole,
  useCreateCredential,
  useCreateDestination,
  useCredentials,
  useDeleteCredential,
  useDeleteDestination,
  useDeliveries,
  useDelivery,
  useDestination,
  useDestinations,
  useDestinationTypes,
  useReplay,
  useRotateCredential,
  useTestDestination,
  useUpdateDestination,
  type PageOptions,
} from './hooks.js';
export {
  darkTheme,
  defaultTheme,
  themeToCssVars,
  type PushrailClassNames,
  type PushrailTheme,
  type PushrailThemeColors,
  type PushrailThemeFontSizes,
} from './theme.js';
export { decodeJwtExp, SignedOutError, TokenManager, type AuthState, type SignedOutReason, type TokenManagerOptions } from './token.js';
export {
  ApiClient,
  PushrailApiError,
  type Attempt,
  type AwsRoleTrust,
  type AwsTrustPolicy,
  type AttemptOutcome,
  type AuditEntry,
  type AuditFilters,
  type Credential,
  type CredentialKind,
  type Delivery,
  type DeliveryFilters,
  type DeliveryStatus,
  type Destination,
  type DestinationInput,
  type DestinationType,
  type FieldError,
  type JsonSchema,
  type Page,
  type ReplayRequest,
  type ReplayResult,
  type TestResult,
} from './api.js';
export { SchemaForm, type SchemaFormProps } from './SchemaForm.js';
export { validate as validateAgainstSchema, type FieldErrors } from './schema.js';
export type { TabId } from './context.js';
