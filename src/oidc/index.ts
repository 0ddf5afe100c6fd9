/** Signing in with OpenID Connect providers as a relying party (openid-client): discovery, authorization URLs, code exchange. */

export { DEFAULT_BACKOFF, DEFAULT_PROVIDER_TIMEOUT_S, isLoopbackHost, ProviderClient, type AuthorizationChecks, type BackoffOptions, type DiscoveryListeners } from './provider-client.js'
export { OidcProviders, redirectUriOf, type OidcProvidersOptions, type ProvidersDiscoveryListeners } from './providers.js'
