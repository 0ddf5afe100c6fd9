/**
 * One call to a route's upstream through @fastify/reply-from, inside the route's circuit breaker
 * and under the route's timeout. The server is picked from the route's pool; a server that could
 * not be connected to at all is left out for a while and the request goes to another one (nothing
 * was sent, so nothing is sent twice); any other failure is answered, never retried. Resolves
 * once the upstream's answer is being streamed back (or the client has gone); rejects with 502,
 * 504, 503 GH_UNAVAILABLE (no server in rotation) or the breaker's 503.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { RouteConfig } from '../config/types.js'
import type { UpstreamTarget } from '../core/pipeline/index.js'
import type { UpstreamPool, UpstreamServer } from '../core/upstream-pool.js'
import { GatehouseError } from '../errors.js'
import type { BreakerRegistry } from '../resilience/breaker-registry.js'
import { RetryableBody } from './retryable-body.js'

export interface UpstreamCall {
  route: RouteConfig
  upstream: UpstreamTarget
  pool: UpstreamPool
  /** The headers the upstream receives, made from the client's (`host` is the server's). */
  rewriteHeaders(incoming: IncomingHttpHeaders): IncomingHttpHeaders
  /** The upstream's answer headers as the client receives them. */
  rewriteResponseHeaders(incoming: IncomingHttpHeaders): IncomingHttpHeaders
  /** Told once how long the upstream took to answer or fail. */
  onSettled(seconds: number): void
}

/** Errors of the proxy client meaning that no connection was made: nothing reached the server. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'])

export function callUpstream(request: FastifyRequest, reply: FastifyReply, breakers: BreakerRegistry, call: UpstreamCall): Promise<void> {
  const breaker = breakers.get(`upstream:${call.route.name}`, () => true)
  return breaker.run(() => proxy(request, reply, call))
}

function proxy(request: FastifyRequest, reply: FastifyReply, call: UpstreamCall): Promise<void> {
  const { route, upstream, pool } = call
  const first = pool.pick()
  if (first === null) {
    return Promise.reject(new GatehouseError('GH_UNAVAILABLE', 'No upstream server is in rotation', {
      retryAfter: pool.retryAfterSeconds() ?? 10,
      details: { route: route.name },
    }))
  }
  const body = request.body === undefined || request.body === null ? null : new RetryableBody(request.raw)
  return new Promise<void>((resolve, reject) => {
    const started = performance.now()
    const tried = new Set<number>()
    let settled = false
    let timer: NodeJS.Timeout | undefined
    let endAttempt: () => void = () => undefined
    const finished = (): boolean => {
      if (settled) return false
      settled = true
      clearTimeout(timer)
      endAttempt()
      call.onSettled((performance.now() - started) / 1000)
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
      endAttempt()
      resolve()
    })

    const attempt = (server: UpstreamServer) => {
      tried.add(server.index)
      endAttempt = pool.begin(server)
      if (body !== null) request.body = body.attempt()
      reply.from(serverBase(upstream, route, server), {
        // The query goes out exactly as the client sent it, kept out of the URL: there reply-from's
        // check would refuse a query holding "/.." and the URL parser would re-encode some
        // characters (' becomes %27), so that the upstream would receive another target than htu.
        queryString: () => upstream.query.slice(1),
        timeout: route.timeout,
        // Never resend: not on a 503 (reply-from's default for GET), not after an error.
        retryDelay: () => null,
        rewriteRequestHeaders: (_req, headers) => call.rewriteHeaders(headers),
        rewriteHeaders: (headers) => call.rewriteResponseHeaders(headers),
        onResponse: (_request, upstreamReply, response) => {
          const { stream } = response as unknown as { stream: NodeJS.ReadableStream & { destroy(): void } }
          // Too late: the client has had its 504.
          if (settled) return stream.destroy()
          const end = endAttempt
          stream.once('close', end).once('end', end)
          settled = true
          clearTimeout(timer)
          call.onSettled((performance.now() - started) / 1000)
          resolve()
          void upstreamReply.send(stream)
        },
        onError: (_reply, { error }) => {
          if (settled) return
          endAttempt()
          if (notConnected(error)) {
            pool.connectFailed(server)
            const next = body?.taken ? null : pool.pick(tried)
            if (next !== null) return attempt(next)
          }
          if (finished()) reject(upstreamFailure(error))
        },
      })
    }
    attempt(first)
  })
}

/** The URL of the upstream request on `server`: every server shares the scheme and base path. */
function serverBase(upstream: UpstreamTarget, route: RouteConfig, server: UpstreamServer): string {
  if (server.index === 1) return upstream.base
  // `base` was made from the first server's URL.
  const firstOrigin = new URL(upstream.base).origin
  return new URL(server.url).origin + upstream.base.slice(firstOrigin.length)
}

function notConnected(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } } | null)?.cause
  const code = cause?.code ?? (error as { code?: string } | null)?.code ?? ''
  return NOT_CONNECTED.has(code)
}

/** Upstream failures never name the upstream's address (SPEC §5). */
function upstreamFailure(error: unknown): GatehouseError {
  const code = (error as { code?: string } | null)?.code ?? ''
  if (/TIMEOUT/i.test(code)) return new GatehouseError('GH_GATEWAY_TIMEOUT')
  return new GatehouseError('GH_BAD_GATEWAY')
}
