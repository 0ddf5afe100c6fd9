/**
 * The soak's upstream: a node:http server that verifies, with the package's own verifier, the
 * identity of every request the gateway forwards, and counts every request that should never
 * have reached it. It can also flap: stop accepting connections for a while, then come back
 * on the same port.
 *
 * Paths: `/s/…` is the `session` route, `/p/…` the `pat` route (both `auth: required`),
 * `/pub/…` the `public` route. The soak's client marks each request with
 * `x-soak-intent` (`good`, or why its credential is not valid: `bad`, `revoked`, `logged-out`)
 * and `x-soak-user` (the user id it authenticates as); headers the gateway passes through.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createVerifier, VerificationError, type Verifier } from '../src/verify.js'

export interface Violation {
  /** Milliseconds since the soak started. */
  at: number
  route: string
  path: string
  reason: string
  intent: string
  requestId: string
}

export interface UpstreamCounts {
  /** Requests received, by route. */
  received: Record<string, number>
  /** Protected requests whose assertion verified and matched the intended user and method. */
  verified: number
  /** Verification could not run (the JWKS could not be fetched): not a violation, but no check either. */
  jwksUnavailable: number
}

const ROUTE_OF: Array<[RegExp, 'session' | 'pat' | 'public']> = [
  [/^\/s(\/|$|\?)/, 'session'],
  [/^\/p(\/|$|\?)/, 'pat'],
  [/^\/pub(\/|$|\?)/, 'public'],
]

export class SoakUpstream {
  #server: Server | undefined
  #verifiers: { session: Verifier; pat: Verifier } | undefined
  port = 0
  readonly violations: Violation[] = []
  readonly counts: UpstreamCounts = { received: {}, verified: 0, jwksUnavailable: 0 }

  constructor(readonly clock: () => number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get up(): boolean {
    return this.#server !== undefined
  }

  /** The gateway's key set and issuer; until then protected requests are answered 503. */
  useGateway(options: { jwksUrl: string; issuer: string; ca: string }): void {
    const make = (audience: string) =>
      createVerifier({ jwksUrl: options.jwksUrl, issuer: options.issuer, audience, ca: options.ca })
    this.#verifiers = { session: make('session'), pat: make('pat') }
  }

  async start(port = this.port): Promise<void> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        this.#violation(req, 'upstream', `the soak upstream failed: ${String(error)}`)
        if (!res.headersSent) res.writeHead(500)
        res.end()
      })
    })
    server.keepAliveTimeout = 5_000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.port = (server.address() as AddressInfo).port
    this.#server = server
  }

  /** Refuses connections from now on (open ones are cut) until `start()` again. */
  async stop(): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeAllConnections()
    await closed
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/'
    const route = ROUTE_OF.find(([pattern]) => pattern.test(path))?.[1] ?? 'unknown'
    this.counts.received[route] = (this.counts.received[route] ?? 0) + 1
    const intent = header(req, 'x-soak-intent') ?? 'unmarked'

    if (route === 'public' || route === 'unknown') {
      // Public routes: nothing of the gateway's identity, and no gateway credential, may pass.
      const leaked = Object.keys(req.headers).filter((name) => name.replace(/_/g, '-').startsWith('x-auth-'))
      if (leaked.length > 0) this.#violation(req, route, `identity headers on a public route: ${leaked.join(', ')}`)
      if (/^Bearer +pat_/i.test(header(req, 'authorization') ?? '')) this.#violation(req, route, 'a PAT reached a public route')
      if (/(^|;\s*)(__Host-)?gh_session=/.test(header(req, 'cookie') ?? '')) this.#violation(req, route, 'the session cookie reached a public route')
      return send(res, 200, { route })
    }

    const verifier = this.#verifiers?.[route]
    if (verifier === undefined) return send(res, 503, { error: 'no verifier yet' })
    let identity
    try {
      identity = await verifier(req)
    } catch (error) {
      if (error instanceof VerificationError && error.code === 'jwks_unavailable') {
        this.counts.jwksUnavailable++
        return send(res, 503, { error: error.code })
      }
      const code = error instanceof VerificationError ? error.code : String(error)
      this.#violation(req, route, `no valid assertion: ${code}`)
      // 418: a status the gateway never makes, so the client sees the breach as well.
      return send(res, 418, { violation: code })
    }
    const problems: string[] = []
    const expectedMethod = route === 'pat' ? 'pat' : 'session'
    if (identity.method !== expectedMethod) problems.push(`authenticated by ${identity.method} on the ${route} route`)
    if (intent !== 'good') problems.push(`a request marked "${intent}" was let through`)
    const user = header(req, 'x-soak-user')
    if (user !== undefined && user !== identity.id) problems.push(`identity ${identity.id} instead of ${user}`)
    if (problems.length > 0) {
      for (const problem of problems) this.#violation(req, route, problem)
      return send(res, 418, { violation: problems })
    }
    this.counts.verified++
    send(res, 200, { route, id: identity.id, method: identity.method })
  }

  #violation(req: IncomingMessage, route: string, reason: string): void {
    this.violations.push({
      at: this.clock(),
      route,
      path: req.url ?? '',
      reason,
      intent: header(req, 'x-soak-intent') ?? 'unmarked',
      requestId: header(req, 'x-request-id') ?? '',
    })
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  // Marks the answer as the upstream's, so that the client tells it from the gateway's own.
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-soak-upstream': '1' })
  res.end(text)
}
