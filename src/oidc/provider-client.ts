/**
 * One OpenID Connect provider of `auth.oidc`, as a relying party built on openid-client:
 * discovery of the issuer's metadata (retried with exponential back-off while the issuer is
 * down, never blocking the gateway), the authorization URL with PKCE, state and nonce, and
 * the callback's code exchange with every check openid-client makes (state, `iss`, the ID
 * token's signature, issuer, audience, nonce and times). Failures become GatehouseErrors:
 * GH_OIDC_UNAVAILABLE (503) when the provider cannot be reached, GH_OIDC_INVALID (400) when
 * its answer does not validate, GH_OIDC_REFUSED (403) when it answered with an error.
 */
import * as client from 'openid-client'
import type { OidcProviderConfig } from '../config/types.js'
import type { OidcClaims } from '../core/oidc-accounts.js'
import { GatehouseError } from '../errors.js'

export interface BackoffOptions {
  /** Delay before the first retry, milliseconds. */
  initialMs: number
  /** Longest delay between attempts, milliseconds. */
  maxMs: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1_000, maxMs: 60_000 }
/** Seconds each request to the provider may take (discovery, token, JWKS, userinfo). */
export const DEFAULT_PROVIDER_TIMEOUT_S = 10

export interface ProviderClientOptions {
  /** `${public_url}/auth/oidc/<name>/callback`. */
  redirectUri: string
  backoff?: BackoffOptions
  timeoutSeconds?: number
}

export interface DiscoveryListeners {
  /** Told of each failed discovery, with the delay before the next attempt. */
  onDiscoveryError?: (err: unknown, retryInMs: number) => void
  onDiscovered?: () => void
}

/** What a successful code exchange yields. */
export interface ExchangeResult {
  claims: OidcClaims
  /** The ID token as issued, for `id_token_hint` at RP-initiated logout. */
  idToken: string
  /** The provider's refresh token, when it issued one. */
  refreshToken: string | null
}

/** What a re-check with the refresh token found. */
export type RefreshResult =
  | { refused: true; error: string }
  /** `claims` is null when the provider answered with neither an ID token nor a userinfo endpoint. */
  | { refused: false; claims: OidcClaims | null; refreshToken: string | null }

export interface AuthorizationChecks {
  state: string
  nonce: string
  codeVerifier: string
}

/** True for the hosts SPEC §5 lets an issuer use plain http on. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

export class ProviderClient {
  readonly provider: OidcProviderConfig
  readonly redirectUri: string
  readonly #backoff: BackoffOptions
  readonly #timeout: number
  #listeners: DiscoveryListeners = {}
  #config: client.Configuration | null = null
  #timer: NodeJS.Timeout | null = null
  #failures = 0
  #nextAttemptAt = 0
  #started = false
  #closed = false

  constructor(provider: OidcProviderConfig, options: ProviderClientOptions) {
    this.provider = provider
    this.redirectUri = options.redirectUri
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF
    this.#timeout = options.timeoutSeconds ?? DEFAULT_PROVIDER_TIMEOUT_S
  }

  get name(): string {
    return this.provider.name
  }

  /** True once the issuer's metadata is known. */
  get ready(): boolean {
    return this.#config !== null
  }

  /** Starts discovery (once); later attempts follow the back-off until one succeeds or close(). */
  start(listeners: DiscoveryListeners = {}): void {
    if (this.#started || this.#closed) return
    this.#started = true
    this.#listeners = listeners
    void this.#attempt()
  }

  /** Stops retrying; in-flight requests finish on their own timeout. */
  close(): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  /** Where to send the browser; GH_OIDC_UNAVAILABLE with Retry-After until discovery succeeded. */
  async authorizationUrl(checks: AuthorizationChecks): Promise<URL> {
    const config = this.#configuration()
    return client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      response_type: 'code',
      scope: this.provider.scopes.join(' '),
      state: checks.state,
      nonce: checks.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
    })
  }

  /**
   * Validates the authorization response at `callbackUrl` (the full URL the browser was sent
   * to, on public_url), redeems the code with the PKCE verifier, validates the ID token, and
   * resolves its claims, completed from userinfo when the ID token carries no email (as
   * providers do that follow OpenID Connect Core §5.4 strictly for the code flow).
   */
  async exchange(callbackUrl: URL, checks: AuthorizationChecks): Promise<ExchangeResult> {
    const config = this.#configuration()
    try {
      const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      })
      const idToken = tokens.claims()
      if (idToken === undefined) throw new GatehouseError('GH_OIDC_INVALID', 'The provider sent no ID token', { details: { reason: 'id_token_missing' } })
      const claims: OidcClaims = { sub: idToken.sub, email: idToken.email, email_verified: idToken.email_verified, name: idToken.name, all: { ...idToken } }
      if (claims.email === undefined && config.serverMetadata().userinfo_endpoint !== undefined) {
        const info = await client.fetchUserInfo(config, tokens.access_token, idToken.sub)
        claims.email = info.email
        claims.email_verified = info.email_verified
        claims.name ??= info.name
        // The ID token's claims win: userinfo only completes what it lacks.
        claims.all = { ...info, ...idToken }
      }
      return { claims, idToken: tokens.id_token ?? '', refreshToken: tokens.refresh_token ?? null }
    } catch (err) {
      throw this.#mapError(err)
    }
  }

  /**
   * Re-checks the user with the provider's refresh token (SPEC §2 `refresh_interval`): the
   * refresh_token grant, then the claims of the new ID token (validated, and its `sub` the
   * same user), else of userinfo. Resolves `refused` when the provider refused the grant
   * (revoked, expired, user gone: any 4xx), and throws GH_OIDC_UNAVAILABLE when it could not
   * answer, so that an outage never ends sessions.
   */
  async refresh(refreshToken: string, subject: string): Promise<RefreshResult> {
    const config = this.#configuration()
    let tokens: Awaited<ReturnType<typeof client.refreshTokenGrant>>
    try {
      tokens = await client.refreshTokenGrant(config, refreshToken)
    } catch (err) {
      if (err instanceof client.ResponseBodyError && err.status < 500) return { refused: true, error: safeCode(err.error) }
      throw this.#mapError(err)
    }
    try {
      const idToken = tokens.claims()
      if (idToken !== undefined) {
        if (idToken.sub !== subject) return { refused: true, error: 'subject_changed' }
        return { refused: false, claims: { sub: idToken.sub, all: { ...idToken } }, refreshToken: tokens.refresh_token ?? null }
      }
      if (config.serverMetadata().userinfo_endpoint === undefined) return { refused: false, claims: null, refreshToken: tokens.refresh_token ?? null }
      const info = await client.fetchUserInfo(config, tokens.access_token, subject)
      return { refused: false, claims: { sub: info.sub, all: { ...info } }, refreshToken: tokens.refresh_token ?? null }
    } catch (err) {
      if (err instanceof client.ResponseBodyError && err.status < 500) return { refused: true, error: safeCode(err.error) }
      if (err instanceof client.WWWAuthenticateChallengeError && err.status < 500) return { refused: true, error: 'userinfo_refused' }
      throw this.#mapError(err)
    }
  }

  /** The issuer's discovered metadata; GH_OIDC_UNAVAILABLE until discovery succeeded. */
  metadata(): client.ServerMetadata {
    return this.#configuration().serverMetadata()
  }

  /**
   * Where to send the browser to end its provider session too (RP-initiated logout), or null
   * when the provider has no end_session_endpoint or is not discovered yet.
   */
  endSessionUrl(idTokenHint: string | null, postLogoutRedirectUri: string): URL | null {
    if (this.#config === null || this.#config.serverMetadata().end_session_endpoint === undefined) return null
    const parameters: Record<string, string> = { post_logout_redirect_uri: postLogoutRedirectUri, client_id: this.provider.client_id }
    if (idTokenHint) parameters.id_token_hint = idTokenHint
    return client.buildEndSessionUrl(this.#config, parameters)
  }

  #configuration(): client.Configuration {
    if (this.#config === null) {
      const retryAfter = Math.max(1, Math.ceil((this.#nextAttemptAt - Date.now()) / 1000))
      throw new GatehouseError('GH_OIDC_UNAVAILABLE', undefined, { retryAfter, details: { reason: 'not_discovered' } })
    }
    return this.#config
  }

  async #attempt(): Promise<void> {
    this.#timer = null
    if (this.#closed) return
    try {
      const config = await this.#discover()
      if (this.#closed) return
      this.#config = config
      this.#failures = 0
      this.#listeners.onDiscovered?.()
    } catch (err) {
      if (this.#closed) return
      const delay = Math.min(this.#backoff.maxMs, this.#backoff.initialMs * 2 ** Math.min(this.#failures, 30))
      // Up to 10% jitter, so that replicas restarted together do not retry in step.
      const jittered = Math.round(delay * (1 + Math.random() * 0.1))
      this.#failures++
      this.#nextAttemptAt = Date.now() + jittered
      this.#listeners.onDiscoveryError?.(err, jittered)
      this.#timer = setTimeout(() => void this.#attempt(), jittered)
      this.#timer.unref()
    }
  }

  async #discover(): Promise<client.Configuration> {
    const { issuer, client_id, client_secret } = this.provider
    const insecure = new URL(issuer).protocol === 'http:' && isLoopbackHost(new URL(issuer).hostname)
    const execute = [client.enableNonRepudiationChecks, ...(insecure ? [client.allowInsecureRequests] : [])]
    const discovered = await client.discovery(new URL(issuer), client_id, { client_secret }, client.ClientSecretBasic(client_secret), {
      execute,
      timeout: this.#timeout,
    })
    const methods = discovered.serverMetadata().token_endpoint_auth_methods_supported
    // client_secret_basic is the default of OpenID Connect; post only where basic is not offered.
    if (methods === undefined || methods.includes('client_secret_basic') || !methods.includes('client_secret_post')) {
      return discovered
    }
    const config = new client.Configuration(discovered.serverMetadata(), client_id, { client_secret }, client.ClientSecretPost(client_secret))
    config.timeout = this.#timeout
    for (const method of execute) method(config)
    return config
  }

  #mapError(err: unknown): GatehouseError {
    if (err instanceof GatehouseError) return err
    const name = this.provider.name
    if (isUnreachable(err)) {
      return new GatehouseError('GH_OIDC_UNAVAILABLE', `${name} could not be reached`, {
        cause: err,
        retryAfter: 5,
        details: { reason: 'provider_unreachable' },
      })
    }
    if (err instanceof client.AuthorizationResponseError) {
      return new GatehouseError('GH_OIDC_REFUSED', `${name} did not sign you in (${safeCode(err.error)}).`, {
        cause: err,
        details: { reason: 'provider_error', error: safeCode(err.error) },
      })
    }
    if (err instanceof client.ResponseBodyError) {
      return new GatehouseError(
        'GH_OIDC_INVALID',
        `${name} refused the sign-in code (${safeCode(err.error)}): it has expired or was already used. Start again.`,
        { cause: err, details: { reason: 'code_rejected', error: safeCode(err.error) } },
      )
    }
    const problem = describe(err)
    return new GatehouseError('GH_OIDC_INVALID', `The answer from ${name} did not validate: ${problem.text}.`, {
      cause: err,
      details: problem.claim === undefined ? { reason: problem.reason } : { reason: problem.reason, claim: problem.claim },
    })
  }
}

/** An error code from the provider, shown to the user: OAuth codes are a small ASCII alphabet. */
function safeCode(code: unknown): string {
  return typeof code === 'string' && /^[\x20-\x7e]{1,64}$/.test(code) ? code.replace(/[^A-Za-z0-9_.-]/g, '') : 'error'
}

function causeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { cause?: unknown }).cause : undefined
}

/** Network failures, timeouts and 5xx answers: the provider is down, not wrong. */
function isUnreachable(err: unknown): boolean {
  if (err instanceof client.ResponseBodyError) return err.status >= 500
  if (err instanceof TypeError && err.message === 'fetch failed') return true
  if (err instanceof client.ClientError) {
    if (err.code === 'OAUTH_TIMEOUT' || err.code === 'OAUTH_ABORT') return true
    const cause = causeOf(err)
    if (cause instanceof Response) return cause.status >= 500
    // A network failure while fetching the JWKS arrives wrapped.
    if (cause instanceof TypeError && cause.message === 'fetch failed') return true
  }
  return false
}

function describe(err: unknown): { reason: string; text: string; claim?: string } {
  const inner = causeOf(err)
  const message = inner instanceof Error ? inner.message : err instanceof Error ? err.message : 'unknown error'
  const details = causeOf(inner)
  const claim = typeof details === 'object' && details !== null ? (details as { claim?: unknown }).claim : undefined
  if (typeof claim === 'string') return { reason: 'id_token_invalid', text: `the ID token's "${claim}" is wrong`, claim }
  if (/"iss"/.test(message)) return { reason: 'issuer_mismatch', text: 'it names another issuer' }
  if (/"state"/.test(message)) return { reason: 'state_mismatch', text: 'the state does not match' }
  if (/signature/i.test(message) || (err instanceof client.ClientError && err.code === 'OAUTH_KEY_SELECTION_FAILED')) {
    return { reason: 'id_token_invalid', text: "the ID token's signature does not verify" }
  }
  if (err instanceof client.ClientError && err.code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED') {
    return { reason: 'id_token_invalid', text: 'the ID token has expired or is not valid yet' }
  }
  return { reason: 'invalid_response', text: 'the response is malformed' }
}
