/**
 * Validation of an OpenID Connect Back-Channel Logout 1.0 logout token (§2.6): signed by the
 * provider with an asymmetric key from its JWKS, `iss` the provider's issuer, `aud` our
 * client_id, `iat` present and recent, `exp` (when present) not passed, the back-channel
 * logout event in `events`, a `sid` or a `sub`, a `jti`, and no `nonce` (which would make it
 * an ID token in disguise). Replay of a `jti` is the caller's to refuse (it needs the shared
 * store). Every refusal is GH_OIDC_INVALID (400) with a `reason`.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose'
import type { Clock } from '../core/clock.js'
import { GatehouseError } from '../errors.js'
import type { ProviderClient } from './provider-client.js'

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'
/** Asymmetric JWS algorithms only: a symmetric one would let anyone holding the client secret (or a public key) sign. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']
/** Clock difference tolerated between the provider and the gateway. */
export const LOGOUT_TOKEN_LEEWAY_S = 60
/** A logout token is sent at once; one older than this is refused even without `exp`. */
export const LOGOUT_TOKEN_MAX_AGE_S = 600

export interface VerifiedLogoutToken {
  sid: string | null
  sub: string | null
  jti: string
  /** Epoch ms after which the token is refused anyway: how long its `jti` must be remembered. */
  refusedAfter: number
}

const MAX_CLAIM_LENGTH = 255

function invalid(reason: string, message: string, cause?: unknown): GatehouseError {
  return new GatehouseError('GH_OIDC_INVALID', message, { details: { reason }, cause })
}

function optionalString(payload: JWTPayload, claim: string): string | null {
  const value = payload[claim]
  if (value === undefined) return null
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_CLAIM_LENGTH) {
    throw invalid('logout_token_invalid', `The logout token's "${claim}" is malformed`)
  }
  return value
}

export class LogoutTokenVerifier {
  readonly #clock: Clock
  readonly #jwks = new Map<string, { uri: string; keys: ReturnType<typeof createRemoteJWKSet> }>()

  constructor(options: { clock: Clock }) {
    this.#clock = options.clock
  }

  async verify(provider: ProviderClient, token: string): Promise<VerifiedLogoutToken> {
    const metadata = provider.metadata()
    if (metadata.jwks_uri === undefined) throw invalid('logout_token_invalid', 'The provider publishes no JWKS to verify logout tokens with')
    const now = this.#clock.now()
    let payload: JWTPayload
    try {
      const verified = await jwtVerify(token, this.#keysOf(provider.name, metadata.jwks_uri), {
        issuer: provider.provider.issuer,
        audience: provider.provider.client_id,
        algorithms: ASYMMETRIC_ALGORITHMS,
        clockTolerance: LOGOUT_TOKEN_LEEWAY_S,
        maxTokenAge: LOGOUT_TOKEN_MAX_AGE_S,
        requiredClaims: ['iat', 'jti'],
        currentDate: new Date(now),
      })
      payload = verified.payload
      const typ = verified.protectedHeader.typ?.toLowerCase()
      // §2.4: logout tokens should be typed; an ID token (typ JWT or none) cannot pass the checks below anyway.
      if (typ !== undefined && typ !== 'logout+jwt' && typ !== 'application/logout+jwt' && typ !== 'jwt') {
        throw invalid('logout_token_invalid', `A logout token cannot be of type ${typ}`)
      }
    } catch (err) {
      throw this.#mapError(err)
    }
    if (payload.nonce !== undefined) throw invalid('logout_token_invalid', 'A logout token must not carry a nonce')
    const events = payload.events
    if (typeof events !== 'object' || events === null || Array.isArray(events)) {
      throw invalid('logout_token_invalid', 'The logout token has no events claim')
    }
    const event: unknown = (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT]
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      throw invalid('logout_token_invalid', 'The logout token does not carry the back-channel logout event')
    }
    const sid = optionalString(payload, 'sid')
    const sub = optionalString(payload, 'sub')
    if (sid === null && sub === null) throw invalid('logout_token_invalid', 'The logout token names neither a sid nor a sub')
    const jti = optionalString(payload, 'jti') as string
    const iat = (payload.iat as number) * 1000
    const maxAgeEnd = iat + (LOGOUT_TOKEN_MAX_AGE_S + LOGOUT_TOKEN_LEEWAY_S) * 1000
    const expEnd = payload.exp === undefined ? maxAgeEnd : payload.exp * 1000 + LOGOUT_TOKEN_LEEWAY_S * 1000
    return { sid, sub, jti, refusedAfter: Math.min(maxAgeEnd, expEnd) }
  }

  #keysOf(provider: string, uri: string): ReturnType<typeof createRemoteJWKSet> {
    let entry = this.#jwks.get(provider)
    if (entry === undefined || entry.uri !== uri) {
      entry = { uri, keys: createRemoteJWKSet(new URL(uri), { timeoutDuration: 5_000, cooldownDuration: 30_000 }) }
      this.#jwks.set(provider, entry)
    }
    return entry.keys
  }

  #mapError(err: unknown): GatehouseError {
    if (err instanceof GatehouseError) return err
    if (err instanceof errors.JWKSTimeout || (err instanceof TypeError && err.message === 'fetch failed')) {
      return new GatehouseError('GH_OIDC_UNAVAILABLE', "The provider's keys could not be fetched", { cause: err, retryAfter: 5 })
    }
    if (err instanceof errors.JWTClaimValidationFailed) {
      return invalid('logout_token_invalid', `The logout token's "${err.claim}" is wrong`, err)
    }
    if (err instanceof errors.JWTExpired) return invalid('logout_token_invalid', 'The logout token has expired', err)
    return invalid('logout_token_invalid', 'The logout token does not verify', err)
  }
}
