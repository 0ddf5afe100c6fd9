/**
 * RP-initiated logout (SPEC §2 `provider_logout`): where a signed-out browser goes to end its
 * provider session too: the provider's end_session_endpoint with `id_token_hint` and
 * `post_logout_redirect_uri` = the login page.
 */
import type { OidcProviders } from '../oidc/providers.js'
import type { OidcSessions } from '../core/oidc-sessions.js'

export interface ProviderLogoutServices {
  oidc: OidcProviders
  oidcSessions: OidcSessions
  config: { server: { public_url: string } }
}

/** The provider logout URL for this session, or null (not OIDC, provider_logout off, no endpoint). */
export async function providerLogoutUrl(services: ProviderLogoutServices, sessionId: string): Promise<string | null> {
  const link = await services.oidcSessions.get(sessionId)
  if (link === null) return null
  const provider = services.oidc.get(link.provider)
  if (provider === null || !provider.provider.provider_logout) return null
  return provider.endSessionUrl(link.id_token, `${services.config.server.public_url}/auth/login`)?.href ?? null
}
