/**
 * Per-route rate limits (SPEC §6) with @fastify/rate-limit: one limiter per configured route
 * that has a policy, run by the edge once the route is matched and the caller authenticated
 * (a `key: user` policy counts per user; anonymous callers, and `key: ip`, per client IP).
 *
 * Counts are per route: two routes naming one policy each get the policy's allowance. The
 * client IP is fastify's `request.ip`, which believes X-Forwarded-For only from a peer in
 * `server.trust_proxy`; IPv6 clients are counted per /64, since one host usually holds one.
 */
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { RouteConfig } from '../config/types.js'
import { GatehouseError } from '../errors.js'
import type { FallbackCounter } from '../resilience/fallback-counter.js'

export type RouteLimiter = (route: RouteConfig, request: FastifyRequest, reply: FastifyReply) => Promise<void>

export interface RouteRateLimitOptions {
  routes: readonly RouteConfig[]
  /** Counts in the session store, per replica while it is down. */
  counter: FallbackCounter
  onExceeded(route: RouteConfig): void
}

/** The key a request is counted under; `request.identity` must be set (null when anonymous). */
function keyFor(route: RouteConfig, request: FastifyRequest): string {
  const user = route.rate_limit?.key === 'user' ? request.identity?.user.id : undefined
  return `${route.name}:${user === undefined ? `ip:${normalizeIP(request.ip)}` : `user:${user}`}`
}

export async function routeRateLimits(app: FastifyInstance, options: RouteRateLimitOptions): Promise<RouteLimiter> {
  const { counter } = options
  await app.register(rateLimit, {
    global: false,
    // The @fastify/rate-limit store interface over our counter.
    store: class {
      incr(key: string, callback: (err: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number) {
        counter.increment(`rate:${key}`, timeWindow).then(
          (state) => callback(null, { current: state.count, ttl: Math.max(0, state.resetInMs) }),
          (err: Error) => callback(err),
        )
      }
      child() {
        return this
      }
    },
  })
  const limiters = new Map<RouteConfig, (request: FastifyRequest, reply: FastifyReply) => Promise<void>>()
  for (const route of options.routes) {
    const policy = route.rate_limit
    if (policy === null) continue
    const hook = app.rateLimit({
      max: policy.max,
      timeWindow: policy.window,
      keyGenerator: (request) => keyFor(route, request),
      onExceeded: () => options.onExceeded(route),
      errorResponseBuilder: (_request, context) =>
        new GatehouseError('GH_RATE_LIMITED', `Rate limit exceeded, retry in ${context.after}`, {
          retryAfter: Math.ceil(context.ttl / 1000),
          details: { route: route.name },
        }),
    })
    limiters.set(route, (request, reply) => hook.call(app, request, reply) as Promise<void>)
  }
  return async (route, request, reply) => {
    await limiters.get(route)?.(request, reply)
  }
}
