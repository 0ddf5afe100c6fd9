/**
 * The edge: every request that is not for the gateway itself. It asks the request pipeline
 * (core/pipeline) for a decision, records it, and either answers the refusal or proxies to the
 * upstream over pooled keep-alive connections (undici).
 */
import { normalizeIP } from '@fastify/rate-limit'
import { Agent } from 'undici'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { OriginMatcher } from '../core/allowed-origins.js'
import type { AssertionSigner } from '../core/assertion-signer.js'
import { type CredentialResolver, type GateAllow, type GateOutcome, type GateRefusal, type GateRequest, type SecretSource } from '../core/pipeline/index.js'
import type { RouteTable } from '../core/route-table.js'
import type { SecondFactorPolicy } from '../core/pipeline/index.js'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import type { BreakerRegistry } from '../resilience/breaker-registry.js'
import type { FallbackCounter } from '../resilience/fallback-counter.js'
import { withoutGatewaySetCookies } from './gateway-cookies.js'
import './request-context.js'
import { preflightAnswer, routeCorsHeaders, withRouteCors } from './route-cors.js'
import type { TrustedProxies } from './trusted-proxies.js'
import { callUpstream } from './upstream-call.js'
import { upstreamHeaders } from './upstream-headers.js'
import type { UpstreamPools } from './upstream-pools.js'
import { firstValue, gateHeaders, gatewayGate } from './gate.js'

export interface EdgeOptions {
  /** Second factors (SPEC §3): the enrolment gate and route `mfa: required`. */
  secondFactors: SecondFactorPolicy | null
  table: RouteTable
  credentials: CredentialResolver
  signer: AssertionSigner
  proxies: TrustedProxies
  publicUrl: string
  allowedOrigins: OriginMatcher
  sessionCookieNames: readonly string[]
  protocol: 'http' | 'https'
  metrics: GatewayMetrics
  breakers: BreakerRegistry
  /** Where the rate limits count: the session store, or this process while it is down. */
  counter: FallbackCounter
  /** Each route's upstream servers. */
  pools: UpstreamPools
  /** Users' secrets: looked up for routes with `user_secret`, injected into their upstream request only. */
  secrets: SecretSource
  /** Every route's `user_secret` header, stripped from every client request. */
  secretHeaders: ReadonlySet<string>
  /** `Strict-Transport-Security` for upstream answers that carry none; null when off. */
  hsts: string | null
}

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

export async function edge(app: FastifyInstance, options: EdgeOptions): Promise<void> {
  const { metrics } = options
  const agent = upstreamAgent(app)
  streamBodies(app)
  logCounterFallback(app, options.counter)
  const gate = gatewayGate(options)

  async function handle(request: FastifyRequest, reply: FastifyReply) {
    const preflight = preflightAnswer(options.table, {
      method: request.method,
      target: request.raw.url ?? '',
      host: clientHost(request) ?? null,
      origin: request.headers.origin,
      requestMethod: firstValue(request.headers['access-control-request-method']),
    })
    if (preflight !== null) return reply.code(204).headers(preflight).send()
    const outcome = await gate.evaluate(gateRequestOf(request))
    remember(request, outcome)
    logDecision(request, outcome)
    reply.headers(outcome.responseHeaders)
    const cors = routeCorsHeaders(outcome.route, request.headers.origin)
    if (cors !== null) reply.headers(cors)
    if (outcome.kind === 'refuse') return refuse(reply, outcome)
    if (options.hsts !== null) reply.header('strict-transport-security', options.hsts)
    await forward(request, reply, outcome, cors)
    return reply
  }

  function forward(request: FastifyRequest, reply: FastifyReply, allowed: GateAllow, cors: Record<string, string> | null): Promise<void> {
    const { route } = allowed
    return callUpstream(request, reply, agent, options.breakers, {
      route,
      upstream: allowed.upstream,
      pool: options.pools.of(route),
      onSettled: (seconds) => {
        request.upstreamSeconds = seconds
        metrics.upstream(route.name, seconds)
      },
      rewriteHeaders: (headers, serverHost) =>
        upstreamHeaders(headers, {
          sessionCookieNames: options.sessionCookieNames,
          publicRoute: route.auth === 'public',
          requestId: request.id,
          peerAddress: request.socket.remoteAddress ?? '',
          peerTrusted: options.proxies.trusts(request.socket.remoteAddress ?? ''),
          protocol: options.protocol,
          host: clientHost(request),
          serverHost,
          preserveHost: route.preserve_host,
          identity: allowed.identity && allowed.identityHeaders,
          secretHeaders: options.secretHeaders,
          userSecret: allowed.userSecret,
        }),
      rewriteResponseHeaders: (headers) => {
        const kept = withoutGatewaySetCookies(headers, options.sessionCookieNames)
        return cors === null ? kept : withRouteCors(kept, cors)
      },
    })
  }

  app.route({ method: ALL_METHODS, url: '/', handler: handle })
  app.route({ method: ALL_METHODS, url: '/*', handler: handle })
}

/** Bodies stream through untouched: the upstream, not the gateway, parses them. */
function streamBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))
}

/**
 * Pooled keep-alive connections to every upstream server. The app closes once what it took is
 * answered or the drain timeout has passed: whatever still streams then (a long download, an
 * event stream) is cut rather than holding the shutdown or the reload.
 */
function upstreamAgent(app: FastifyInstance): Agent {
  const agent = new Agent({ connections: 256, pipelining: 1, keepAliveTimeout: 30_000 })
  app.addHook('onClose', async () => agent.destroy())
  return agent
}

function logCounterFallback(app: FastifyInstance, counter: FallbackCounter): void {
  const stopListening = counter.onChange((active, err) => {
    if (active) app.log.warn({ err }, 'rate limits are counted per replica: the session store is unavailable')
    else app.log.info('rate limits are counted in the session store again')
  })
  app.addHook('onClose', async () => stopListening())
}

/** The request as the pipeline reads it: for HTTP/2, `:authority` is the host. */
export function gateRequestOf(request: FastifyRequest): GateRequest {
  const { headers } = request
  return {
    kind: 'proxy',
    method: request.method,
    host: clientHost(request) ?? null,
    target: request.raw.url ?? '',
    headers: gateHeaders(headers),
    rawHeaders: request.raw.rawHeaders,
    clientKey: () => normalizeIP(request.ip),
    requestId: request.id,
  }
}

/** `logging.level: debug` shows each decision and its reason (never a credential). */
function logDecision(request: FastifyRequest, outcome: GateOutcome): void {
  if (request.log.level !== 'debug' && request.log.level !== 'trace') return
  request.log.debug({
    route: outcome.route?.name ?? null,
    outcome: outcome.outcome,
    code: outcome.kind === 'refuse' ? outcome.error.code : undefined,
    reason: outcome.decision?.reason,
    missing_permissions: outcome.decision?.missing_permissions,
    user: outcome.identity?.user.id,
    auth_method: outcome.identity?.method,
    upstream: outcome.kind === 'allow' ? new URL(outcome.upstream.base).origin : undefined,
  }, 'route decision')
}

/** The Host the client asked for: for HTTP/2, `:authority`. */
function clientHost(request: FastifyRequest): string | undefined {
  return firstValue(request.headers[':authority']) ?? request.headers.host
}

/** What the access log learns of the decision: the route and who asked. */
function remember(request: FastifyRequest, outcome: GateOutcome): void {
  request.routeName = outcome.route?.name ?? null
  request.identity = outcome.identity
}

function refuse(reply: FastifyReply, refusal: GateRefusal): FastifyReply {
  if (refusal.loginRedirect !== null) return reply.redirect(refusal.loginRedirect, 302)
  throw refusal.error
}
