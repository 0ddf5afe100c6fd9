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
  const url = request.raw.url ?? ''
  const query = url.indexOf('?')
  const path = query === -1 ? url : url.slice(0, query)
  return {
    reqId: request.id,
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
  // The line's fields are the gateway's own and hold no secret (no header, no query), so the
  // redaction pass of the app's logger is skipped for it; every other line keeps it.
  const lines = app.log.child({}, { redact: { paths: [] } })

  function record(request: FastifyRequest, status: number, message: string) {
    if (request.accessLogged === true) return
    request.accessLogged = true
    const now = performance.now()
    const durationMs = now - (request.receivedAt ?? now)
    const line = accessLine(request, status, durationMs)
    metrics.request(line.route, request.method, status, durationMs / 1000)
    if (durationMs > slowRequestMs) {
      lines.warn({ ...line, slow: true, slow_request_threshold_ms: slowRequestMs }, 'slow request')
    } else {
      lines.info(line, message)
    }
  }

  // Callback hooks: an async hook costs a promise and a microtask turn on every request.
  app.addHook('onRequest', (request, reply, done) => {
    request.receivedAt = performance.now()
    // onResponse runs only for an answer that finished; a client that leaves first (while its
    // body is read, a login hashes, or the upstream answers) is recorded when the response
    // closes unfinished. This covers fastify's onRequestAbort cases too.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) record(request, CLIENT_CLOSED, 'request aborted')
    })
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    record(request, reply.statusCode, 'request')
    done()
  })
  return { recordUnrouted: (request, status) => record(request, status, 'request') }
}

const round = (ms: number) => Math.round(ms * 100) / 100
