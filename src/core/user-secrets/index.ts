/** Users' own secrets for routes with `user_secret` (SPEC §5): stored sealed, injected into one route's upstream. */
export { canonicalHeaderName, secretHeaderRefusal } from './header-name.js'
export { DatabaseUserSecretStore } from './database-store.js'
export { UserSecrets, type InjectedSecret, type SecretListItem, type SecretProblem, type UserSecretsOptions } from './service.js'
export type { SealedSecret, SecretInfo, StoredSecret, UserSecretStore } from './store.js'
export { upstreamFingerprint } from './upstream-fingerprint.js'
export { checkSecretValue, MAX_SECRET_BYTES } from './value.js'
