/**
 * One call to a route's upstream through @fastify/reply-from, inside the route's circuit breaker
 * and under the route's timeout. Resolves once the upstream's answer is being streamed back
 * (or the client has gone); rejects with 502, 504 or the breaker's 503.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { RouteConfig } from '../config/types.js'
import type { UpstreamTarget } from '../core/pipeline/index.js'
import { GatehouseError } from '../errors.js'
import type { BreakerRegistry } from '../resilience/breaker-registry.js'

export interface UpstreamCall {
  route: RouteConfig
  upstream: UpstreamTarget
  /** The headers the upstream receives, made from the client's. */
  rewriteHeaders(incoming: IncomingHttpHeaders): IncomingHttpHeaders
  /** The upstream's answer headers as the client receives them. */
  rewriteResponseHeaders(incoming: IncomingHttpHeaders): IncomingHttpHeaders
  /** Told once how long the upstream took to answer or fail. */
  onSettled(seconds: number): void
}

export function callUpstream(request: FastifyRequest, reply: FastifyReply, breakers: BreakerRegistry, call: UpstreamCall): Promise<void> {
  const breaker = breakers.get(`upstream:${call.route.name}`, () => true)
  return breaker.run(() => proxyOnce(request, reply, call))
}

function proxyOnce(request: FastifyRequest, reply: FastifyReply, call: UpstreamCall): Promise<void> {
  const { route, upstream } = call
  return new Promise<void>((resolve, reject) => {
    const started = performance.now()
    let settled = false
    let timer: NodeJS.Timeout | undefined
    const finished = (): boolean => {
      if (settled) return false
      settled = true
      clearTimeout(timer)
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
      resolve()
    })
    reply.from(upstream.base, {
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
        if (!finished()) return stream.destroy()
        resolve()
        void upstreamReply.send(stream)
      },
      onError: (_reply, { error }) => {
        if (finished()) reject(upstreamFailure(error))
      },
    })
  })
}

/** Upstream failures never name the upstream's address (SPEC §5). */
function upstreamFailure(error: unknown): GatehouseError {
  const code = (error as { code?: string } | null)?.code ?? ''
  if (/TIMEOUT/i.test(code)) return new GatehouseError('GH_GATEWAY_TIMEOUT')
  return new GatehouseError('GH_BAD_GATEWAY')
}
