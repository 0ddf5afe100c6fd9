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
import { GatehouseError } from '../errors.js'
import type { Authenticator } from './authenticate.js'
import { checkSameOrigin, isUnsafeMethod } from './csrf.js'
import { sendError } from './error-handler.js'
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
}

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

const GATEWAY_BEARER = /^Bearer +(pat_\S+|[A-Za-z0-9_-]{43}) *$/i

/** A browser navigation: sent to the login page instead of getting a bare 401. */
function isBrowserNavigation(request: FastifyRequest): boolean {
  return (request.method === 'GET' || request.method === 'HEAD') && (request.headers.accept ?? '').includes('text/html')
}

export async function edge(app: FastifyInstance, options: EdgeOptions): Promise<void> {
  const { table, authenticator, signer, proxies } = options

  // Bodies stream through untouched: the upstream, not the gateway, parses them.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))
  await app.register(replyFrom, {
    undici: { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 },
    disableRequestLogging: true,
  })

  async function handle(request: FastifyRequest, reply: FastifyReply) {
    const target = normalizeTarget(request.raw.url ?? '')
    const match = table.match(target.path, request.method)
    if (match.kind === 'not_found') throw new GatehouseError('GH_NOT_FOUND')
    if (match.kind === 'method_not_allowed') {
      reply.header('allow', match.allow.join(', '))
      throw new GatehouseError('GH_METHOD_NOT_ALLOWED')
    }
    const { route } = match
    assertForwardable(match.upstreamPath)
    const destination = forwardUrl(route, match.upstreamPath)
    const identity = route.auth === 'public' ? null : await authenticator.authenticate(request)
    const decision = decide(route, identity)
    if (!decision.allow) {
      if (decision.outcome === 'unauthenticated' && isBrowserNavigation(request)) {
        return reply.redirect(`/auth/login?next=${encodeURIComponent(target.path + target.query)}`, 302)
      }
      throw refusal(route, decision.outcome, decision.missing_permissions)
    }
    if (identity?.via === 'cookie' && route.csrf && isUnsafeMethod(request.method)) {
      checkSameOrigin(request.headers, options.allowedOrigins)
    }
    // A lone '?' is not forwarded (reply-from drops an empty query string).
    const query = target.query === '?' ? '' : target.query
    const upstreamUri = destination.pathname + query
    return reply.from(destination.href, {
      // The query goes out exactly as the client sent it, kept out of the URL: there reply-from's
      // check would refuse a query holding "/.." and the URL parser would re-encode some
      // characters (' becomes %27), so that the upstream would receive another target than htu.
      queryString: () => query.slice(1),
      timeout: route.timeout,
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
      onError: (upstreamReply, { error }) => {
        sendError(upstreamReply as unknown as FastifyReply, upstreamFailure(error))
      },
    })
  }

  function identityHeadersFor(identity: Identity, route: RouteConfig, request: FastifyRequest, uri: string) {
    const assertion = signer.sign(identity, { audience: route.name, requestId: request.id, method: request.method, uri })
    return identityHeaders(identity, assertion, identity.tokenId ?? undefined)
  }

  app.route({ method: ALL_METHODS, url: '/', handler: handle })
  app.route({ method: ALL_METHODS, url: '/*', handler: handle })
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
