/**
 * Signs `X-Auth-Assertion` (SPEC §4): a compact JWS, EdDSA over Ed25519, with the identity
 * and, when bound to the request, the request it was made for.
 *
 * This runs once per proxied request, so it is a JWS built by hand rather than through a
 * JOSE library: the header is encoded once per key, the payload is a plain object and the
 * signature one call into ed25519.ts. Tests check that jose's `jwtVerify` accepts the result.
 */
import { randomUUID } from 'node:crypto'
import type { Clock } from './clock.js'
import { fastestEd25519, type Ed25519, type Ed25519Sign } from './ed25519.js'
import type { Identity } from './identity.js'
import type { KeyRing } from './identity-keys.js'

/** Unbound assertions cached at most; the oldest is dropped first. */
export const DEFAULT_ASSERTION_CACHE_SIZE = 10_000

export interface AssertionSignerOptions {
  keys: KeyRing
  /** `server.public_url`, the `iss` claim. */
  issuer: string
  /** `identity.assertion_ttl` in milliseconds. */
  ttlMs: number
  /** `identity.bind_to_request`. */
  bindToRequest: boolean
  clock: Clock
  /** Largest number of cached unbound assertions. */
  cacheSize?: number
  /** The Ed25519 implementation; default: libsodium where it works, else node:crypto. */
  ed25519?: Ed25519
}

export interface AssertionRequest {
  /** The route's name, the `aud` claim. */
  audience: string
  /** The `X-Request-Id` the upstream receives, the `rid` claim (client-chosen: never the `jti`). */
  requestId: string
  method: string
  /** Path and query exactly as the upstream receives them, the `htu` claim. */
  uri: string
}

/** The payload of `X-Auth-Assertion` (SPEC §4). */
interface AssertionClaims {
  iss: string
  aud: string
  sub: string
  email: string | undefined
  roles: readonly string[]
  amr: readonly string[]
  iat: number
  exp: number
  jti?: string
  rid?: string
  htm?: string
  htu?: string
}

interface CachedAssertion {
  token: string
  /** Epoch ms of the `iat` it carries. */
  issuedAt: number
  /** Epoch ms after which it is no longer handed out. */
  reuseUntil: number
}

export class AssertionSigner {
  readonly #keys: KeyRing
  readonly #issuer: string
  readonly #ttlMs: number
  readonly #ttlSeconds: number
  readonly #bindToRequest: boolean
  readonly #clock: Clock
  readonly #cacheSize: number
  readonly #cache = new Map<string, CachedAssertion>()
  readonly #ed25519: Ed25519
  /** The current key's encoded JWS header and its signing function. */
  #header: { kid: string; encoded: string; sign: Ed25519Sign } | null = null

  constructor(options: AssertionSignerOptions) {
    if (!Number.isFinite(options.ttlMs) || options.ttlMs < 1000) throw new TypeError('ttlMs must be at least 1000')
    this.#keys = options.keys
    this.#issuer = options.issuer
    this.#ttlMs = options.ttlMs
    this.#ttlSeconds = Math.ceil(options.ttlMs / 1000)
    this.#bindToRequest = options.bindToRequest
    this.#clock = options.clock
    this.#cacheSize = Math.max(1, options.cacheSize ?? DEFAULT_ASSERTION_CACHE_SIZE)
    this.#ed25519 = options.ed25519 ?? fastestEd25519()
  }

  /** Which Ed25519 implementation signs: `libsodium` or `node:crypto`. */
  get implementation(): string {
    return this.#ed25519.name
  }

  sign(identity: Identity, request: AssertionRequest): string {
    const header = this.#currentHeader()
    const now = this.#clock.now()
    const iat = Math.floor(now / 1000)
    const { user } = identity
    // One literal, then the bound claims added in a fixed order: spreading objects into a
    // literal took V8's slow path on every request.
    const claims: AssertionClaims = {
      iss: this.#issuer,
      aud: request.audience,
      sub: user.id,
      email: user.email === '' ? undefined : user.email, // JSON.stringify leaves it out
      roles: user.roles,
      amr: identity.amr,
      iat,
      exp: iat + this.#ttlSeconds,
    }
    if (this.#bindToRequest) {
      // jti is the gateway's own, fresh for every assertion: a client can repeat an X-Request-Id.
      claims.jti = randomUUID()
      claims.rid = request.requestId
      claims.htm = request.method
      claims.htu = request.uri
      return this.#signPayload(header, claims)
    }

    // Everything the unbound payload holds except the times; the kid is implied, since the
    // cache is emptied when the key changes.
    const cacheKey = JSON.stringify([request.audience, user.id, identity.amr, user.email, user.roles])
    const cached = this.#cache.get(cacheKey)
    if (cached !== undefined && now < cached.reuseUntil && now >= cached.issuedAt) return cached.token
    const token = this.#signPayload(header, claims)
    // Reused for at most half the ttl counted from iat, so an upstream always receives one
    // with at least half its lifetime left.
    this.#cache.delete(cacheKey)
    this.#cache.set(cacheKey, { token, issuedAt: iat * 1000, reuseUntil: iat * 1000 + this.#ttlMs / 2 })
    if (this.#cache.size > this.#cacheSize) {
      const oldest = this.#cache.keys().next()
      if (oldest.done !== true) this.#cache.delete(oldest.value)
    }
    return token
  }

  #currentHeader(): { encoded: string; sign: Ed25519Sign } {
    const key = this.#keys.current
    if (this.#header?.kid !== key.kid) {
      this.#cache.clear()
      const encoded = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid: key.kid })).toString('base64url')
      this.#header = { kid: key.kid, encoded, sign: this.#ed25519.signerFor(key.privateKey) }
    }
    return this.#header
  }

  #signPayload(header: { encoded: string; sign: Ed25519Sign }, payload: object): string {
    const signingInput = `${header.encoded}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
    return `${signingInput}.${header.sign(Buffer.from(signingInput)).toString('base64url')}`
  }
}
