/**
 * GET /auth/verify (SPEC §4b): forward auth for a proxy that stays in front (nginx
 * `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`). The original request, read from
 * the proxy's headers, goes through the same pipeline as the edge; the answer is the decision:
 * 200 with the identity headers for the proxy to copy to its upstream, or the refusal.
 */
import { normalizeIP } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ForwardAuthConfig } from '../config/types.js'
import type { OriginMatcher } from '../core/allowed-origins.js'
import type { AssertionSigner } from '../core/assertion-signer.js'
import { type CredentialResolver, type GateOutcome, type GateRefusal } from '../core/pipeline/index.js'
import type { RouteTable } from '../core/route-table.js'
import { GatehouseError } from '../errors.js'
import type { SecondFactorPolicy } from '../core/pipeline/index.js'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import type { FallbackCounter } from '../resilience/fallback-counter.js'
import { sendError } from './error-handler.js'
import { originalUrl, readOriginalRequest, type OriginalRequest } from './forward-auth-request.js'
import './request-context.js'
import { errorResponses } from './schemas.js'
import { trustedProxies } from './trusted-proxies.js'
import { gateHeaders, gatewayGate } from './gate.js'

export interface ForwardAuthOptions {
  /** Second factors (SPEC §3): the enrolment gate and route `mfa: required`. */
  secondFactors: SecondFactorPolicy | null
  settings: ForwardAuthConfig
  /** Every route, forward-auth-only ones included. */
  table: RouteTable
  credentials: CredentialResolver
  signer: AssertionSigner
  counter: FallbackCounter
  publicUrl: string
  allowedOrigins: OriginMatcher
  metrics: GatewayMetrics
}

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

export async function forwardAuthRoutes(app: FastifyInstance, options: ForwardAuthOptions): Promise<void> {
  const { settings, metrics, publicUrl } = options
  const callers = trustedProxies(settings.trusted)
  const publicHost = new URL(publicUrl).host.toLowerCase()
  const defaultProto = publicUrl.startsWith('https:') ? 'https' : 'http'
  const gate = gatewayGate({
    table: options.table,
    credentials: options.credentials,
    signer: options.signer,
    counter: options.counter,
    publicUrl,
    allowedOrigins: options.allowedOrigins,
    metrics,
    secondFactors: options.secondFactors,
    onOutcome: (outcome) => metrics.forwardAuth(outcome.outcome),
  })

  async function verify(request: FastifyRequest<{ Querystring: { redirect?: string } }>, reply: FastifyReply) {
    // The TCP peer, never X-Forwarded-For: only the proxy in front may ask.
    if (!callers.trusts(request.socket.remoteAddress ?? '')) {
      metrics.forwardAuth('forbidden')
      throw new GatehouseError('GH_FORBIDDEN', 'Only the proxies in forward_auth.trusted may call /auth/verify', {
        details: { reason: 'untrusted_caller' },
      })
    }
    let original: OriginalRequest
    try {
      original = readOriginalRequest(request.raw.rawHeaders, settings.headers, defaultProto)
    } catch (err) {
      metrics.forwardAuth('error')
      throw err
    }
    const outcome = await gate.evaluate({
      kind: 'forward_auth',
      method: original.method,
      host: original.host,
      target: original.target,
      headers: gateHeaders(request.headers),
      rawHeaders: request.raw.rawHeaders,
      clientKey: () => normalizeIP(request.ip),
      requestId: request.id,
    })
    request.identity = outcome.identity
    reply.headers(outcome.responseHeaders)
    if (outcome.kind === 'allow') return reply.code(200).headers(outcome.identityHeaders).send()
    return refuse(reply, outcome, original, request.query.redirect === 'true')
  }

  function refuse(reply: FastifyReply, outcome: GateRefusal, original: OriginalRequest, redirect: boolean): FastifyReply {
    if (outcome.loginRedirect !== null) {
      // A session lacking the second factor the route needs goes to the step-up page instead.
      const login = loginUrl(original, outcome.error.code === 'GH_MFA_REQUIRED' ? '/auth/login/step-up' : '/auth/login')
      if (redirect) return reply.redirect(login, 302)
      reply.header('location', login)
    }
    return sendError(reply, proxyAnswer(outcome, settings.headers))
  }

  /** The login (or step-up) page, with `next` the original URL (a local path when it is the gateway's own host). */
  function loginUrl(original: OriginalRequest, page: string): string {
    const next = original.host.toLowerCase() === publicHost ? original.target : originalUrl(original)
    return `${publicUrl}${page}?next=${encodeURIComponent(next)}`
  }

  // Any method (a proxy may send the original one); documented once, as GET. A body the proxy
  // sends is ignored: the decision is about the original request.
  const schema = {
    querystring: { type: 'object', properties: { redirect: { type: 'string', enum: ['true', 'false'] } } },
    response: {
      200: { type: 'null', description: 'Allowed: X-Auth-* headers (and X-Auth-Assertion) to copy to the upstream; none for a public route' },
      302: { type: 'null', description: 'With redirect=true, a browser navigation without a credential: to the login page (without the second factor a route needs: to the step-up page)' },
      ...errorResponses,
    },
  }
  app.route<{ Querystring: { redirect?: string } }>({ method: 'GET', url: '/auth/verify', schema, config: { access: 'anonymous' }, handler: verify })
  app.route<{ Querystring: { redirect?: string } }>({
    method: ALL_METHODS.filter((method) => method !== 'GET' && method !== 'HEAD'),
    url: '/auth/verify',
    schema: { hide: true },
    handler: verify,
  })
}

/**
 * The refusal as the proxy in front can pass it on: a path the edge would refuse is 403 (the
 * proxy decides what its own upstream receives); nginx passes only 2xx, 401 and 403, so with
 * `headers: original` a rate-limited call is 403 GH_RATE_LIMITED (Retry-After kept).
 */
function proxyAnswer(outcome: GateOutcome & { kind: 'refuse' }, set: ForwardAuthConfig['headers']): GatehouseError {
  const { error } = outcome
  const as403 = error.code === 'GH_BAD_PATH' || (set === 'original' && error.code === 'GH_RATE_LIMITED')
  if (!as403) return error
  return new GatehouseError(error.code, error.message, { details: { ...error.details }, retryAfter: error.retryAfter, status: 403 })
}
