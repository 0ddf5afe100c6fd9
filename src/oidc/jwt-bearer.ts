/**
 * Access tokens of other issuers as credentials (SPEC §3 `auth.jwt_bearer`). A bearer token
 * shaped like a JWT whose unverified `iss` is a listed issuer is verified against that
 * issuer's keys: discovered from `<issuer>/.well-known/openid-configuration` (`jwks_uri`),
 * cached, fetched again for an unknown `kid` at most once per cooldown (a minute), and in the
 * background once the cache is old. Asymmetric algorithms only; `iss`, `aud`, `exp`/`nbf`
 * with 60 s of leeway; a `sub`. The identity is `<name>|<sub>` with the mapped roles only.
 *
 * Failures: 401 GH_UNAUTHENTICATED for a token that does not verify; 503 GH_UNAVAILABLE when
 * the issuer's keys cannot be fetched and none cached fits (cached keys keep working).
 */
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, errors, type JWK, type JWTPayload } from 'jose'
import type { JwtIssuerConfig } from '../config/types.js'
import type { Clock } from '../core/clock.js'
import { groupsOf, mappedRoles } from '../core/provider-roles.js'
import { GatehouseError } from '../errors.js'
import { ASYMMETRIC_ALGORITHMS } from './logout-token.js'
import { isLoopbackHost } from './provider-client.js'

/** An unknown `kid` makes the keys be fetched again at most this often. */
export const JWKS_REFETCH_COOLDOWN_MS = 60_000
/** Cached keys older than this are fetched again in the background (a key the issuer removed stops working). */
export const JWKS_MAX_AGE_MS = 10 * 60_000
/** Allowance for clocks that disagree (SPEC §3). */
export const JWT_LEEWAY_S = 60
const FETCH_TIMEOUT_MS = 5_000
/** With no keys cached, a failed fetch is tried again after this long at the earliest. */
const FAILED_RETRY_MS = 5_000
const MAX_RESPONSE_BYTES = 1024 * 1024
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export interface JwtBearerIdentity {
  /** `<name>|<sub>`, the X-Auth-User-Id. */
  id: string
  issuer: string
  sub: string
  email: string | null
  roles: string[]
  /** Epoch ms of `exp`, or null when the token has none. */
  expiresAt: number | null
}

export type JwksFetch = (url: URL) => Promise<unknown>

export interface JwtBearerOptions {
  clock: Clock
  /** GET a URL and parse its JSON; default: fetch with a 5 s timeout and a 1 MiB limit. */
  fetchJson?: JwksFetch
  cooldownMs?: number
}

const unauthenticated = (message: string, cause?: unknown): GatehouseError =>
  new GatehouseError('GH_UNAUTHENTICATED', message, { cause, details: { reason: 'jwt_invalid' } })

/** True when the bearer token has the shape of a compact JWS (three base64url parts). */
export function looksLikeJwt(token: string): boolean {
  return token.length <= 16_384 && JWT_SHAPE.test(token)
}

export class JwtBearer {
  readonly #issuers: Map<string, IssuerKeys>

  constructor(issuers: readonly JwtIssuerConfig[], options: JwtBearerOptions) {
    const fetchJson = options.fetchJson ?? defaultFetchJson
    this.#issuers = new Map(issuers.map((issuer) => [issuer.issuer, new IssuerKeys(issuer, options.clock, fetchJson, options.cooldownMs ?? JWKS_REFETCH_COOLDOWN_MS)]))
  }

  /** Whether this bearer token claims to come from a listed issuer (unverified; routing only). */
  handles(token: string): boolean {
    return this.#issuerOf(token) !== null
  }

  async verify(token: string): Promise<JwtBearerIdentity> {
    const keys = this.#issuerOf(token)
    if (keys === null) throw unauthenticated('The token is not from a listed issuer')
    return keys.verify(token)
  }

  #issuerOf(token: string): IssuerKeys | null {
    if (this.#issuers.size === 0 || !looksLikeJwt(token)) return null
    try {
      const iss = decodeJwt(token).iss
      return typeof iss === 'string' ? (this.#issuers.get(iss) ?? null) : null
    } catch {
      return null
    }
  }
}

interface CachedKey {
  jwk: JWK
  imported: Map<string, Awaited<ReturnType<typeof importJWK>>>
}

/** One issuer's discovered JWKS, cached. */
class IssuerKeys {
  readonly #config: JwtIssuerConfig
  readonly #clock: Clock
  readonly #fetchJson: JwksFetch
  readonly #cooldown: number
  #jwksUri: URL | null = null
  #keys: CachedKey[] | null = null
  #fetchedAt = 0
  #lastAttemptAt = Number.NEGATIVE_INFINITY
  #inFlight: Promise<void> | null = null

  constructor(config: JwtIssuerConfig, clock: Clock, fetchJson: JwksFetch, cooldown: number) {
    this.#config = config
    this.#clock = clock
    this.#fetchJson = fetchJson
    this.#cooldown = cooldown
  }

  async verify(token: string): Promise<JwtBearerIdentity> {
    let header: ReturnType<typeof decodeProtectedHeader>
    try {
      header = decodeProtectedHeader(token)
    } catch (err) {
      throw unauthenticated('The token is not a well-formed JWT', err)
    }
    if (typeof header.alg !== 'string' || !ASYMMETRIC_ALGORITHMS.includes(header.alg)) {
      throw unauthenticated('The token is not signed with an asymmetric algorithm')
    }
    const key = await this.#keyFor(header.alg, header.kid)
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, key, {
        issuer: this.#config.issuer,
        audience: this.#config.audience,
        algorithms: ASYMMETRIC_ALGORITHMS,
        clockTolerance: JWT_LEEWAY_S,
        currentDate: new Date(this.#clock.now()),
      }))
    } catch (err) {
      throw unauthenticated(describe(err), err)
    }
    const sub = payload.sub
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > 255 || !/^[\x21-\x7e]+$/.test(sub)) {
      throw unauthenticated('The token has no usable sub')
    }
    const email = typeof payload.email === 'string' && /^[\x21-\x7e]{3,254}$/.test(payload.email) ? payload.email.toLowerCase() : null
    return {
      id: `${this.#config.name}|${sub}`,
      issuer: this.#config.name,
      sub,
      email,
      roles: mappedRoles(groupsOf(payload, this.#config.roles_claim), this.#config.role_map),
      expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null,
    }
  }

  /** The key a token names; fetches the JWKS when there is none yet or the kid is new (within the cooldown). */
  async #keyFor(alg: string, kid: string | undefined) {
    const now = this.#clock.now()
    let match = this.#match(alg, kid)
    if (match !== undefined) {
      if (now - this.#fetchedAt >= JWKS_MAX_AGE_MS && now - this.#lastAttemptAt >= this.#cooldown) void this.#refresh().catch(() => undefined)
      return this.#import(match, alg)
    }
    if (this.#keys !== null && now - this.#lastAttemptAt < this.#cooldown) throw unauthenticated('The token is signed with an unknown key')
    // Nothing cached and the issuer just failed: answer 503 without asking it again at once.
    if (this.#keys === null && now - this.#lastAttemptAt < FAILED_RETRY_MS) {
      throw new GatehouseError('GH_UNAVAILABLE', `The keys of ${this.#config.name} could not be fetched`, { retryAfter: 5 })
    }
    try {
      await this.#refresh()
    } catch (err) {
      throw new GatehouseError('GH_UNAVAILABLE', `The keys of ${this.#config.name} could not be fetched`, { cause: err, retryAfter: 5 })
    }
    match = this.#match(alg, kid)
    if (match === undefined) throw unauthenticated('The token is signed with an unknown key')
    return this.#import(match, alg)
  }

  #match(alg: string, kid: string | undefined): CachedKey | undefined {
    const usable = (this.#keys ?? []).filter((key) => (key.jwk.use === undefined || key.jwk.use === 'sig') && (key.jwk.alg === undefined || key.jwk.alg === alg))
    if (kid !== undefined) return usable.find((key) => key.jwk.kid === kid)
    return usable.length === 1 ? usable[0] : undefined
  }

  async #import(key: CachedKey, alg: string) {
    let imported = key.imported.get(alg)
    if (imported === undefined) {
      try {
        imported = await importJWK(key.jwk, alg)
      } catch (err) {
        throw unauthenticated('The key the token names does not fit its algorithm', err)
      }
      if (imported instanceof Uint8Array) throw unauthenticated('The issuer published a symmetric key')
      key.imported.set(alg, imported)
    }
    return imported
  }

  /** One fetch at a time; the keys are replaced only by a successful one. */
  #refresh(): Promise<void> {
    this.#inFlight ??= (async () => {
      this.#lastAttemptAt = this.#clock.now()
      try {
        this.#jwksUri ??= await this.#discover()
        const jwks = await this.#fetchJson(this.#jwksUri)
        const keys = (jwks as { keys?: unknown } | null)?.keys
        if (!Array.isArray(keys)) throw new Error('the JWKS has no keys array')
        this.#keys = keys
          .filter((key): key is JWK => typeof key === 'object' && key !== null && typeof (key as JWK).kty === 'string' && (key as JWK).kty !== 'oct')
          .map((jwk) => ({ jwk, imported: new Map() }))
        this.#fetchedAt = this.#clock.now()
      } finally {
        this.#inFlight = null
      }
    })()
    return this.#inFlight
  }

  async #discover(): Promise<URL> {
    const base = this.#config.issuer.replace(/\/$/, '')
    const metadata = (await this.#fetchJson(new URL(`${base}/.well-known/openid-configuration`))) as { issuer?: unknown; jwks_uri?: unknown } | null
    if (metadata?.issuer !== this.#config.issuer) throw new Error('the discovery document names another issuer')
    if (typeof metadata.jwks_uri !== 'string') throw new Error('the discovery document has no jwks_uri')
    const uri = new URL(metadata.jwks_uri)
    if (uri.protocol !== 'https:' && !(uri.protocol === 'http:' && isLoopbackHost(uri.hostname))) throw new Error('the jwks_uri is not https')
    return uri
  }
}

async function defaultFetchJson(url: URL): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error', headers: { accept: 'application/json' } })
  if (!response.ok) throw new Error(`${url.href} answered ${response.status}`)
  const length = Number(response.headers.get('content-length') ?? 0)
  if (length > MAX_RESPONSE_BYTES) throw new Error(`${url.href} is larger than 1 MiB`)
  const text = await response.text()
  if (text.length > MAX_RESPONSE_BYTES) throw new Error(`${url.href} is larger than 1 MiB`)
  return JSON.parse(text) as unknown
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'The token has expired'
  if (err instanceof errors.JWTClaimValidationFailed) return `The token's "${err.claim}" is wrong`
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'The token signature does not verify'
  return 'The token does not verify'
}
