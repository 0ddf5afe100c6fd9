/**
 * The edge: every request that is not for the gateway itself. It normalises the path,
 * matches a route, authenticates, decides, cleans the headers, signs the identity and
 * proxies to the upstream over pooled keep-alive connections (@fastify/reply-from, undici).
 */
import replyFrom from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { RouteConfig } from '../config/types.js'
import type { AssertionSigner } from '../core/assertion-signer.js'
import type { Identity } from '../core/identity.js'
import { identityHeaders } from '../core/identity-headers.js'
import { assertForwardable, normalizeTarget } from '../core/paths.js'
import { decide } from '../core/policy.js'
import type { RouteTable } from '../core/route-table.js'
import { GatehouseError, isGatehouseError } from '../errors.js'
import './request-context.js'
import type { DecisionOutcome, GatewayMetrics } from '../metrics/gateway-metrics.js'
import type { BreakerRegistry } from '../resilience/breaker-registry.js'
import type { FallbackCounter } from '../resilience/fallback-counter.js'
import type { Authenticator } from './authenticate.js'
import { checkSameOrigin, isUnsafeMethod } from './csrf.js'
import { toGatehouseError } from './error-handler.js'
import { routeRateLimits } from './route-rate-limits.js'
import type { TrustedProxies } from './trusted-proxies.js'
import { upstreamHeaders } from './upstream-headers.js'

export interface EdgeOptions {
  table: RouteTable
  authenticator: Authenticator
  signer: AssertionSigner
  proxies: TrustedProxies
  allowedOrigins: ReadonlySet<string>
  sessionCookieNames: readonly string[]
  protocol: 'http' | 'https'
  metrics: GatewayMetrics
  breakers: BreakerRegistry
  /** Where the rate limits count: the session store, or this process while it is down. */
  counter: FallbackCounter
}

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

const GATEWAY_BEARER = /^Bearer +(pat_\S+|[A-Za-z0-9_-]{43}) *$/i

/** A browser navigation: sent to the login page instead of getting a bare 401. */
function isBrowserNavigation(request: FastifyRequest): boolean {
  return (request.method === 'GET' || request.method === 'HEAD') && (request.headers.accept ?? '').includes('text/html')
}

export async function edge(app: FastifyInstance, options: EdgeOptions): Promise<void> {
  const { table, authenticator, signer, proxies, metrics, breakers } = options

  // Bodies stream through untouched: the upstream, not the gateway, parses them.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))
  await app.register(replyFrom, {
    undici: { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 },
    disableRequestLogging: true,
  })
  const stopListening = options.counter.onChange((active, err) => {
    if (active) app.log.warn({ err }, 'rate limits are counted per replica: the session store is unavailable')
    else app.log.info('rate limits are counted in the session store again')
  })
  app.addHook('onClose', async () => stopListening())
  const limit = await routeRateLimits(app, {
    routes: table.routes,
    counter: options.counter,
    onExceeded: (route) => metrics.rateLimited(route.name),
  })

  async function handle(request: FastifyRequest, reply: FastifyReply) {
    const target = normalizeTarget(request.raw.url ?? '')
    const match = table.match(target.path, request.method)
    if (match.kind === 'not_found') {
      request.log.debug({ outcome: 'error', reason: 'no route matches the path' }, 'route decision')
      throw new GatehouseError('GH_NOT_FOUND')
    }
    if (match.kind === 'method_not_allowed') {
      request.log.debug({ outcome: 'error', reason: 'no route allows the method', allow: match.allow }, 'route decision')
      reply.header('allow', match.allow.join(', '))
      throw new GatehouseError('GH_METHOD_NOT_ALLOWED')
    }
    const { route } = match
    request.routeName = route.name
    assertForwardable(match.upstreamPath)
    const destination = forwardUrl(route, match.upstreamPath)
    let identity: Identity | null
    try {
      identity = route.auth === 'public' ? null : await authenticator.authenticate(request)
      request.identity = identity
      await limit(route, request, reply)
    } catch (err) {
      metrics.decision(route.name, refusalOutcome(err))
      request.log.debug({ route: route.name, outcome: refusalOutcome(err), code: (err as { code?: unknown }).code }, 'route decision')
      throw err
    }
    const decision = decide(route, identity)
    if (!decision.allow) {
      metrics.decision(route.name, decision.outcome)
      const { outcome, reason, missing_permissions: missing } = decision
      request.log.debug({ route: route.name, outcome, reason, missing_permissions: missing, user: identity?.user.id }, 'route decision')
      if (decision.outcome === 'unauthenticated' && isBrowserNavigation(request)) {
        return reply.redirect(`/auth/login?next=${encodeURIComponent(target.path + target.query)}`, 302)
      }
      throw refusal(route, decision.outcome, decision.missing_permissions)
    }
    if (identity?.via === 'cookie' && route.csrf && isUnsafeMethod(request.method)) {
      try {
        checkSameOrigin(request.headers, options.allowedOrigins)
      } catch (err) {
        metrics.decision(route.name, 'forbidden')
        request.log.debug({ route: route.name, outcome: 'forbidden', code: 'GH_CSRF' }, 'route decision')
        throw err
      }
    }
    metrics.decision(route.name, 'allow')
    request.log.debug(
      { route: route.name, outcome: 'allow', reason: decision.reason, user: identity?.user.id, auth_method: identity?.method, upstream: destination.origin },
      'route decision',
    )
    // A lone '?' is not forwarded (reply-from drops an empty query string).
    const query = target.query === '?' ? '' : target.query
    const upstreamUri = destination.pathname + query
    const breaker = breakers.get(`upstream:${route.name}`, () => true)
    await breaker.run(
      () =>
        new Promise<void>((resolve, reject) => {
          const started = performance.now()
          let settled = false
          let timer: NodeJS.Timeout | undefined
          const finished = (): boolean => {
            if (settled) return false
            settled = true
            clearTimeout(timer)
            const seconds = (performance.now() - started) / 1000
            request.upstreamSeconds = seconds
            metrics.upstream(route.name, seconds)
            return true
          }
          // The route's timeout, counted once the client's request is in. undici enforces
          // reply-from's `timeout` too, but on a coarse clock (up to a second late).
          const startTimer = () => {
            timer = setTimeout(() => {
              if (finished()) reject(new GatehouseError('GH_GATEWAY_TIMEOUT'))
            }, route.timeout)
          }
          if (request.raw.complete) startTimer()
          else request.raw.once('end', startTimer)
          // A client that goes away before the upstream answers gets neither callback.
          reply.raw.once('close', () => {
            clearTimeout(timer)
            resolve()
          })
          reply.from(destination.href, {
            // The query goes out exactly as the client sent it, kept out of the URL: there reply-from's
            // check would refuse a query holding "/.." and the URL parser would re-encode some
            // characters (' becomes %27), so that the upstream would receive another target than htu.
            queryString: () => query.slice(1),
            timeout: route.timeout,
            // Never resend: not on a 503 (reply-from's default for GET), not after an error.
            retryDelay: () => null,
            rewriteRequestHeaders: (_req, headers) =>
              upstreamHeaders(headers, {
                sessionCookieNames: options.sessionCookieNames,
                removeAuthorization: route.auth !== 'public' || GATEWAY_BEARER.test(String(headers.authorization ?? '')),
                requestId: request.id,
                trustedForwardedFor: proxies.trusts(request.socket.remoteAddress ?? '')
                  ? firstHeader(request.headers['x-forwarded-for'])
                  : null,
                peerAddress: request.socket.remoteAddress ?? '',
                protocol: options.protocol,
                host: request.headers.host,
                identity: identity && identityHeadersFor(identity, route, request, upstreamUri),
              }),
            onResponse: (_request, upstreamReply, response) => {
              const { stream } = response as unknown as { stream: NodeJS.ReadableStream & { destroy(): void } }
              // Too late: the client has had its 504.
              if (!finished()) return stream.destroy()
              resolve()
              void upstreamReply.send(stream)
            },
            onError: (_reply, { error }) => {
              if (finished()) reject(upstreamFailure(error))
            },
          })
        }),
    )
    return reply
  }

  function identityHeadersFor(identity: Identity, route: RouteConfig, request: FastifyRequest, uri: string) {
    const assertion = signer.sign(identity, { audience: route.name, requestId: request.id, method: request.method, uri })
    return identityHeaders(identity, assertion, identity.tokenId ?? undefined)
  }

  app.route({ method: ALL_METHODS, url: '/', handler: handle })
  app.route({ method: ALL_METHODS, url: '/*', handler: handle })
}

/** How a request that authentication or the rate limit refused is counted. */
function refusalOutcome(err: unknown): DecisionOutcome {
  const mapped = isGatehouseError(err) ? err : toGatehouseError(err as Error)
  if (mapped.code === 'GH_RATE_LIMITED') return 'rate_limited'
  if (mapped.statusCode === 401 || mapped.statusCode === 400) return 'unauthenticated'
  return 'error'
}

const upstreamBases = new WeakMap<RouteConfig, string>()

/**
 * The URL the upstream is asked for: the route's upstream origin and base path (without its
 * trailing slash, so `http://h/` never yields `//x`) followed by the path. Its `pathname` is
 * exactly what reply-from sends: the URL parser percent-encodes a few characters a client
 * may send raw (`{`, `}`, `"`, `<`, `>`, backquote), and the assertion must carry the result.
 */
function forwardUrl(route: RouteConfig, path: string): URL {
  let base = upstreamBases.get(route)
  if (base === undefined) {
    const upstream = new URL(route.upstream)
    base = upstream.origin + upstream.pathname.replace(/\/$/, '')
    upstreamBases.set(route, base)
  }
  return new URL(base + path)
}

function firstHeader(value: string | string[] | undefined): string | null {
  if (value === undefined) return null
  return Array.isArray(value) ? value.join(', ') : value
}

function refusal(route: RouteConfig, outcome: string, missing: readonly string[]): GatehouseError {
  if (outcome === 'unauthenticated') return new GatehouseError('GH_UNAUTHENTICATED')
  return new GatehouseError('GH_FORBIDDEN', `Missing permission: ${missing.join(', ')}`, {
    details: { route: route.name, missing_permission: missing[0], missing_permissions: missing },
  })
}

/** Upstream failures never name the upstream's address (SPEC §5). */
function upstreamFailure(error: unknown): GatehouseError {
  const code = (error as { code?: string } | null)?.code ?? ''
  if (/TIMEOUT/i.test(code)) return new GatehouseError('GH_GATEWAY_TIMEOUT')
  return new GatehouseError('GH_BAD_GATEWAY')
}
