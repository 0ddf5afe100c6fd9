/**
 * `gatehouse/verify`: checks, in a Node upstream, the identity Gatehouse forwarded with a
 * request (SPEC §4).
 *
 * Gatehouse removes every `X-Auth-*` header a client sends and sets its own, among them
 * `X-Auth-Assertion`: a JWT signed with Ed25519 (EdDSA) whose public keys it publishes at
 * `<public_url>/.well-known/jwks.json`. The plain headers are only trustworthy when nothing
 * but the gateway can reach the upstream; the assertion is trustworthy anywhere. This module
 * verifies the assertion, checks that it was made for this upstream (`aud`, the route name),
 * by this gateway (`iss`, its `public_url`), and, when the gateway binds assertions to
 * requests, for this very request (`htm`, `htu`); and it checks that the plain headers say
 * the same as the assertion, so code reading either one reads the same identity.
 *
 * It depends only on `jose` and Node's built-in modules.
 *
 * @example
 * ```ts
 * import http from 'node:http'
 * import { createVerifier, VerificationError } from 'gatehouse/verify'
 *
 * const verify = createVerifier({
 *   jwksUrl: 'https://gatehouse.example.com/.well-known/jwks.json',
 *   issuer: 'https://gatehouse.example.com',
 *   audience: 'app',                       // the route's `name` in gateway.yml
 * })
 *
 * http.createServer(async (req, res) => {
 *   try {
 *     const user = await verify(req)       // headers, method and url of a node:http request
 *     res.end(`hello ${user.email}, roles: ${user.roles.join(', ')}`)
 *   } catch (error) {
 *     if (!(error instanceof VerificationError)) throw error
 *     res.writeHead(error.status).end(error.code)
 *   }
 * }).listen(9001, '127.0.0.1')
 * ```
 *
 * @module
 */
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload } from 'jose'

/**
 * Why an assertion was refused. Stable: compare codes, not messages.
 *
 * - `missing_assertion`: no `X-Auth-Assertion` header (e.g. a request that did not come
 *   through the gateway, or a route with `auth: public`).
 * - `malformed`: not a well-formed JWS/JWT, several assertion headers, or a claim missing or
 *   of the wrong type.
 * - `invalid_signature`: the signature does not verify, the algorithm is not EdDSA, or no
 *   published key has its `kid` (forged, or signed by a key that is no longer published).
 * - `expired`: outside its validity period (`exp`, or `nbf` when present), beyond the clock
 *   tolerance.
 * - `wrong_audience`: made for another route (`aud`).
 * - `wrong_issuer`: made by another gateway (`iss`).
 * - `request_mismatch`: bound to another request: its `htm`/`htu` differ from this request's
 *   method or path and query (a replay).
 * - `header_mismatch`: an `X-Auth-*` header disagrees with the assertion.
 * - `jwks_unavailable`: the key set could not be fetched or is not a valid JWKS. Unlike the
 *   others this says nothing about the request; answer it like a dependency failure (503).
 */
export type VerificationErrorCode =
  | 'missing_assertion'
  | 'malformed'
  | 'invalid_signature'
  | 'expired'
  | 'wrong_audience'
  | 'wrong_issuer'
  | 'request_mismatch'
  | 'header_mismatch'
  | 'jwks_unavailable'

/** Thrown by a verifier when a request's identity cannot be trusted; see {@link VerificationErrorCode}. */
export class VerificationError extends Error {
  readonly code: VerificationErrorCode
  /** The HTTP status an upstream would usually answer with: 503 for `jwks_unavailable`, else 401. */
  readonly status: 401 | 503

  constructor(code: VerificationErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'VerificationError'
    this.code = code
    this.status = code === 'jwks_unavailable' ? 503 : 401
  }
}

/** The identity a verified assertion carries. */
export interface VerifiedIdentity {
  /** The user's id (`sub`). */
  id: string
  /** The user's email address, lower-case ASCII; empty for a `jwt` identity whose token had none. */
  email: string
  /** The user's roles. */
  roles: string[]
  /** `pat` for a personal access token, `session` for a browser or API session, `jwt` for another issuer's token. */
  method: 'session' | 'pat' | 'jwt'
  /** How the user authenticated: `['pwd']`, `['oidc']` or `['pat']`. */
  amr: string[]
  /**
   * The PAT's id, from `X-Auth-Token-Id`, when `method` is `pat` and the header is present.
   * Not covered by the signature: trust it only as far as you trust that requests reach you
   * through the gateway (which always removes a client's `X-Auth-*` headers).
   */
  tokenId?: string
  /** The `X-Request-Id` the assertion was made for (`rid`); only for bound assertions. */
  requestId?: string
  /**
   * The assertion's own id (`jti`), fresh for every request; only for bound assertions. An
   * upstream that must refuse a replayed assertion remembers these until `expiresAt`.
   */
  assertionId?: string
  /** When the assertion was issued, seconds since the epoch (`iat`). */
  issuedAt: number
  /** When it expires, seconds since the epoch (`exp`). */
  expiresAt: number
}

/**
 * What a verifier needs from a request. A `node:http` `IncomingMessage` fits as it is; with
 * other frameworks pass the headers, the method and the request target as received (in
 * Express, `req.originalUrl`, not `req.url`, which a router may have shortened).
 */
export interface VerifiableRequest {
  headers: Headers | Record<string, string | string[] | undefined>
  /** The request's method. Needed when the gateway binds assertions to requests. */
  method?: string
  /**
   * The path and query exactly as received (`/app/items?page=2`); an absolute URL is
   * accepted and reduced to its path and query. Needed when the gateway binds assertions.
   */
  url?: string
}

/**
 * A `fetch`-like function for the JWKS request: called with the URL and
 * `{ method: 'GET', headers, redirect: 'manual', signal }`, it must resolve to a `Response`.
 */
export type JwksFetch = (
  url: string,
  init: { headers: Headers; method: 'GET'; redirect: 'manual'; signal: AbortSignal },
) => Promise<Response>

export interface VerifierOptions {
  /** The gateway's key set: `<public_url>/.well-known/jwks.json`. */
  jwksUrl: string | URL
  /** The gateway's `server.public_url`, exactly as configured (origin, no trailing slash). */
  issuer: string
  /** The name(s) of the route(s) in gateway.yml that lead to this upstream. */
  audience: string | readonly string[]
  /** Allowed clock difference with the gateway, in seconds. Default 5. */
  clockToleranceSec?: number
  /**
   * PEM certificate(s) to trust for an https `jwksUrl`, instead of the system's CAs; for a
   * gateway with a self-signed or private-CA certificate (e.g. its development certificate
   * `certs/tls.crt`). `NODE_EXTRA_CA_CERTS` is another way. Not together with `fetch`.
   */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>
  /** Fetches the JWKS instead of the global `fetch` (a proxy, a custom agent). Not together with `ca`. */
  fetch?: JwksFetch
  /**
   * After a fetch, how long an unknown `kid` waits before it may trigger another fetch, in
   * milliseconds. Default 1000: a verifier picks up a rotated key within a second, and
   * forged `kid`s cost the gateway at most one JWKS request per second per verifier.
   */
  cooldownMs?: number
  /** How long a fetched key set is used before it is fetched again, in milliseconds. Default 600000 (10 minutes). */
  cacheMaxAgeMs?: number
  /** Timeout of the JWKS request, in milliseconds. Default 5000. */
  timeoutMs?: number
  /** The current time in milliseconds since the epoch; for tests. Default `Date.now`. */
  now?: () => number
}

/**
 * Verifies one request; resolves to its identity or rejects with a {@link VerificationError}.
 * Rejects with a `TypeError` when the assertion is bound to a request (`htm`/`htu` claims)
 * but `method` or `url` was not given: that is a mistake in the calling code, not in the
 * request, and must not look like a failed login.
 */
export type Verifier = (request: VerifiableRequest) => Promise<VerifiedIdentity>

const DEFAULT_CLOCK_TOLERANCE_SEC = 5
const DEFAULT_COOLDOWN_MS = 1000
const MAX_JWKS_BYTES = 1024 * 1024
const AMR_VALUES = new Set(['pwd', 'oidc', 'pat', 'jwt', 'otp', 'hwk', 'rcv', 'user'])

/**
 * Creates a verifier for the assertions one gateway makes for one upstream. Create it once
 * and reuse it: it caches the gateway's key set, fetching it again when an assertion names
 * an unknown key (after a rotation) and when the cache is older than `cacheMaxAgeMs`.
 *
 * Throws a `TypeError` for invalid options.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const jwksUrl = parseJwksUrl(options.jwksUrl)
  if (typeof options.issuer !== 'string' || options.issuer === '') throw new TypeError('issuer must be a non-empty string')
  const audience = typeof options.audience === 'string' ? [options.audience] : [...(options.audience ?? [])]
  if (audience.length === 0 || audience.some((name) => typeof name !== 'string' || name === '')) {
    throw new TypeError('audience must be a route name or a non-empty list of them')
  }
  if (options.ca !== undefined && options.fetch !== undefined) throw new TypeError('give either ca or fetch, not both')
  const clockTolerance = options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0) throw new TypeError('clockToleranceSec must be a non-negative number')
  const fetchImplementation = options.fetch ?? (options.ca === undefined ? undefined : fetchTrusting(options.ca))
  const keySet = createRemoteJWKSet(jwksUrl, {
    cooldownDuration: options.cooldownMs ?? DEFAULT_COOLDOWN_MS,
    ...(options.cacheMaxAgeMs === undefined ? {} : { cacheMaxAge: options.cacheMaxAgeMs }),
    ...(options.timeoutMs === undefined ? {} : { timeoutDuration: options.timeoutMs }),
    ...(fetchImplementation === undefined ? {} : { [customFetch]: fetchImplementation }),
  })
  const issuer = options.issuer
  const now = options.now ?? Date.now

  return async function verify(request: VerifiableRequest): Promise<VerifiedIdentity> {
    const assertion = readHeader(request.headers, 'x-auth-assertion')
    if (assertion === undefined) throw new VerificationError('missing_assertion', 'The request carries no X-Auth-Assertion header')
    if (assertion === null) throw new VerificationError('malformed', 'The request carries more than one X-Auth-Assertion header')

    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(assertion, keySet, {
        algorithms: ['EdDSA'],
        issuer,
        audience,
        typ: 'JWT',
        clockTolerance,
        currentDate: new Date(now()),
        requiredClaims: ['iss', 'aud', 'sub', 'iat', 'exp'],
      }))
    } catch (error) {
      throw fromJose(error)
    }

    const identity = identityFrom(payload)
    checkBinding(payload, request)
    checkHeaders(request.headers, identity)
    if (identity.method === 'pat') {
      const tokenId = readHeader(request.headers, 'x-auth-token-id')
      if (typeof tokenId === 'string') identity.tokenId = tokenId
    }
    return identity
  }
}

function parseJwksUrl(value: string | URL): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TypeError('jwksUrl must be an absolute http(s) URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('jwksUrl must be an absolute http(s) URL')
  return url
}

/** The header's value; undefined when absent, null when sent more than once. */
function readHeader(headers: VerifiableRequest['headers'], name: string): string | null | undefined {
  if (isHeaders(headers)) return headers.get(name) ?? undefined
  let value = headers[name]
  if (value === undefined) {
    for (const key of Object.keys(headers)) {
      if (key.toLowerCase() === name) {
        value = headers[key]
        break
      }
    }
  }
  if (Array.isArray(value)) return value.length === 1 ? value[0] : value.length === 0 ? undefined : null
  return value
}

function isHeaders(headers: VerifiableRequest['headers']): headers is Headers {
  return typeof (headers as Partial<Headers>).get === 'function' && typeof (headers as Partial<Headers>).has === 'function'
}

function fromJose(error: unknown): VerificationError {
  if (error instanceof errors.JWTExpired) {
    return new VerificationError('expired', 'The assertion has expired', { cause: error })
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return new VerificationError('malformed', `The assertion has no "${error.claim}" claim`, { cause: error })
    switch (error.claim) {
      case 'aud':
        return new VerificationError('wrong_audience', 'The assertion was made for another audience', { cause: error })
      case 'iss':
        return new VerificationError('wrong_issuer', 'The assertion was made by another issuer', { cause: error })
      case 'nbf':
        return new VerificationError('expired', 'The assertion is not valid yet', { cause: error })
      default:
        return new VerificationError('malformed', `The assertion's "${error.claim}" is invalid`, { cause: error })
    }
  }
  if (
    error instanceof errors.JWSSignatureVerificationFailed ||
    error instanceof errors.JWKSNoMatchingKey ||
    error instanceof errors.JWKSMultipleMatchingKeys ||
    error instanceof errors.JOSEAlgNotAllowed
  ) {
    return new VerificationError('invalid_signature', 'The assertion is not signed by a published key of the gateway', { cause: error })
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return new VerificationError('malformed', 'The assertion is not a well-formed JWT', { cause: error })
  }
  return new VerificationError('jwks_unavailable', "The gateway's key set could not be fetched", { cause: error })
}

function identityFrom(payload: JWTPayload): VerifiedIdentity {
  const { sub, email, roles, amr, iat, exp } = payload
  if (typeof sub !== 'string' || sub === '') throw malformedClaim('sub')
  if (typeof email !== 'string' && !(email === undefined && isStringArray(amr) && amr.includes('jwt'))) throw malformedClaim('email')
  if (!isStringArray(roles)) throw malformedClaim('roles')
  if (!isStringArray(amr) || amr.length === 0 || !amr.every((value) => AMR_VALUES.has(value))) throw malformedClaim('amr')
  if (typeof iat !== 'number' || typeof exp !== 'number') throw malformedClaim('iat')
  const identity: VerifiedIdentity = {
    id: sub,
    email: email ?? '',
    roles: [...roles],
    method: amr.includes('pat') ? 'pat' : amr.includes('jwt') ? 'jwt' : 'session',
    amr: [...amr],
    issuedAt: iat,
    expiresAt: exp,
  }
  if (typeof payload.jti === 'string') identity.assertionId = payload.jti
  if (typeof payload.rid === 'string') identity.requestId = payload.rid
  return identity
}

function malformedClaim(claim: string): VerificationError {
  return new VerificationError('malformed', `The assertion's "${claim}" claim is missing or has the wrong type`)
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}

function checkBinding(payload: JWTPayload, request: VerifiableRequest): void {
  const { htm, htu, jti, rid } = payload
  if (htm === undefined && htu === undefined && jti === undefined && rid === undefined) return
  if (typeof htm !== 'string' || typeof htu !== 'string' || typeof jti !== 'string' || (rid !== undefined && typeof rid !== 'string')) {
    throw new VerificationError('malformed', 'A bound assertion needs string "jti", "htm" and "htu" claims (and "rid" a string)')
  }
  if (request.method === undefined || request.url === undefined) {
    throw new TypeError('the assertion is bound to its request: pass the request\'s method and url to the verifier')
  }
  if (htm !== request.method || htu !== requestTarget(request.url)) {
    throw new VerificationError('request_mismatch', 'The assertion was made for another request')
  }
}

/** Path and query of a request target; an absolute URL loses its scheme and authority, unre-encoded. */
function requestTarget(url: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url)
  if (scheme === null) return url
  const path = url.indexOf('/', scheme[0].length)
  if (path !== -1) return url.slice(path)
  const query = url.indexOf('?', scheme[0].length)
  return query === -1 ? '/' : `/${url.slice(query)}`
}

/** Every identity header that is present must say what the assertion says. */
function checkHeaders(headers: VerifiableRequest['headers'], identity: VerifiedIdentity): void {
  const expected: Array<[string, string]> = [
    ['x-auth-user-id', identity.id],
    ['x-auth-email', identity.email],
    ['x-auth-roles', identity.roles.join(',')],
    ['x-auth-method', identity.method],
  ]
  for (const [name, value] of expected) {
    const sent = readHeader(headers, name)
    if (sent !== undefined && sent !== value) {
      throw new VerificationError('header_mismatch', `The ${name} header does not match the assertion`)
    }
  }
}

/** A JWKS fetch over node:http(s) that trusts the given CA certificates. */
function fetchTrusting(ca: string | Buffer | ReadonlyArray<string | Buffer>): JwksFetch {
  const trusted = typeof ca === 'string' || Buffer.isBuffer(ca) ? [ca] : [...ca]
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url)
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest
      const outgoing = send(
        target,
        { method: 'GET', headers: Object.fromEntries(init.headers), ca: trusted, signal: init.signal },
        (incoming) => {
          const chunks: Buffer[] = []
          let size = 0
          incoming.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (size > MAX_JWKS_BYTES) outgoing.destroy(new Error('The JWKS response is larger than 1 MiB'))
            else chunks.push(chunk)
          })
          incoming.on('end', () => {
            // Only a 200 is read; other statuses get no body, which some (204, 304) may not have.
            const status = incoming.statusCode ?? 502
            resolve(new Response(status === 200 ? Buffer.concat(chunks) : null, { status }))
          })
          incoming.on('error', reject)
        },
      )
      outgoing.on('error', reject)
      outgoing.end()
    })
}
