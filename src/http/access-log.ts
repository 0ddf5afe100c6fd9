/**
 * One access line per request (JSON, through the app's pino logger, so its redaction
 * applies) and the request metrics. The line names the route, the status, the time taken,
 * the upstream's share of it and the user; a request slower than
 * `logging.slow_request_threshold` is logged at `warn` with `slow: true`.
 *
 * The path is logged without its query string: queries carry codes, states and sometimes
 * tokens that the redaction paths cannot know about. Headers are not logged at all.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import './request-context.js'

export interface AccessLogOptions {
  slowRequestMs: number
  metrics: GatewayMetrics
}

const MAX_LOGGED_PATH = 512
/** nginx's status for a request the client gave up on before the answer was sent. */
const CLIENT_CLOSED = 499

/**
 * The bounded label of a request: the configured route's name for a proxied request, the
 * gateway's own route pattern (`/auth/login`, `/health`) for its endpoints, else `unmatched`.
 */
export function routeLabel(request: FastifyRequest): string {
  if (request.routeName !== null) return request.routeName
  const pattern = request.routeOptions.url
  if (pattern === undefined || pattern === '/' || pattern === '/*') return 'unmatched'
  return pattern
}

function accessLine(request: FastifyRequest, status: number, durationMs: number) {
  const path = (request.raw.url ?? '').split('?', 1)[0] ?? ''
  return {
    route: routeLabel(request),
    method: request.method,
    path: path.length > MAX_LOGGED_PATH ? `${path.slice(0, MAX_LOGGED_PATH)}…` : path,
    status,
    duration_ms: round(durationMs),
    upstream_ms: request.upstreamSeconds === null ? null : round(request.upstreamSeconds * 1000),
    user_id: request.identity?.user.id ?? null,
    auth_method: request.identity?.method ?? null,
    ip: request.ip,
  }
}

export interface AccessLog {
  /** Logs and counts an answer that no hook saw (fastify's router refused the request). */
  recordUnrouted(request: FastifyRequest, status: number): void
}

export function addAccessLog(app: FastifyInstance, options: AccessLogOptions): AccessLog {
  const { metrics, slowRequestMs } = options
  const started = new WeakMap<FastifyRequest, number>()
  const recorded = new WeakSet<FastifyRequest>()

  function record(request: FastifyRequest, status: number, message: string) {
    if (recorded.has(request)) return
    recorded.add(request)
    const durationMs = performance.now() - (started.get(request) ?? performance.now())
    const line = accessLine(request, status, durationMs)
    metrics.request(line.route, request.method, status, durationMs / 1000)
    if (durationMs > slowRequestMs) {
      request.log.warn({ ...line, slow: true, slow_request_threshold_ms: slowRequestMs }, 'slow request')
    } else {
      request.log.info(line, message)
    }
  }

  app.addHook('onRequest', async (request, reply) => {
    started.set(request, performance.now())
    // onResponse runs only for an answer that finished; a client that leaves first (while its
    // body is read, a login hashes, or the upstream answers) is recorded when the response
    // closes unfinished. This covers fastify's onRequestAbort cases too.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) record(request, CLIENT_CLOSED, 'request aborted')
    })
  })
  app.addHook('onResponse', async (request, reply) => record(request, reply.statusCode, 'request'))
  return { recordUnrouted: (request, status) => record(request, status, 'request') }
}

const round = (ms: number) => Math.round(ms * 100) / 100
